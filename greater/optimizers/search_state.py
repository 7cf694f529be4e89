"""Everything the GReaTer search needs to continue after a stop, saved atomically after every step."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class SearchState:
    prompt_ids: list[int]
    initial_length: int
    position: int = 0
    step: int = 0  # steps completed
    steps_since_best: int = 0
    # The best prompts seen, as (accuracy, objective, prompt ids), best first.
    leaderboard: list[tuple[float, float, list[int]]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    rng_state: Any = None
    # Reasoning already generated for the current prompt: a resumed run need not regenerate it.
    current_reasonings: list[list[int]] | None = None

    def offer(self, accuracy: float, loss: float, prompt_ids: list[int], keep: int = 10) -> bool:
        """Add a scored prompt to the leaderboard; True when it is the new best."""
        if any(ids == prompt_ids for _, _, ids in self.leaderboard):
            return False
        self.leaderboard.append((accuracy, loss, list(prompt_ids)))
        self.leaderboard.sort(key=lambda row: (-row[0], row[1]))
        del self.leaderboard[keep:]
        return self.leaderboard[0][2] == list(prompt_ids)


def save_state(state: SearchState, run_dir: Path, rng: random.Random) -> Path:
    """Write the checkpoint through a temporary file, so a kill mid-write keeps the previous one."""
    state.rng_state = rng.getstate()
    path = Path(run_dir) / CHECKPOINT_NAME
    tmp = path.with_suffix(".tmp")
    torch.save({"version": 1, "state": state.__dict__}, tmp)
    os.replace(tmp, path)
    return path


def load_state(run_dir: str | Path) -> SearchState:
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; resume=<dir> must name a run directory that has one")
    payload = torch.load(path, weights_only=False)  # our own file: plain Python containers
    return SearchState(**payload["state"])

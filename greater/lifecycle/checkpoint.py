"""The optimizer's side of checkpoint.json: save after a completed step, load when resuming.

The envelope is `greater.lifecycle.rundir.Checkpoint` (state, usage, seconds, steps_done), written and read by
`RunDir`; these functions are its short forms for optimizers and tests. A `random.Random` state goes
through `rng_to_json`, so the state stays plain JSON.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from greater.lifecycle.rundir import (
    CHECKPOINT_NAME,
    CHECKPOINT_VERSION,
    Checkpoint,
    CheckpointError,
    RunDir,
    read_payload,
    state_digest,
    steps_in,
)

__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "has_checkpoint",
    "load_checkpoint",
    "load_counters",
    "load_seconds",
    "read_payload",
    "rng_from_json",
    "rng_to_json",
    "save_checkpoint",
    "state_digest",
]


def save_checkpoint(
    run_dir: str | Path,
    method: str,
    state: dict[str, Any],
    counters: dict[str, float] | None = None,
    seconds: float = 0.0,
    steps_done: int | None = None,
) -> Path:
    """Save `state` atomically (a kill mid-write keeps the previous checkpoint).

    `counters` is the run's work so far (Ledger.flat(): "<role>.<what>" -> amount) and `seconds` the
    optimization time so far: a resumed run starts from both. `steps_done` None: taken from the state's own
    step count."""
    done = steps_in(state) if steps_done is None else steps_done
    return RunDir(run_dir).write_checkpoint(Checkpoint(method, state, dict(counters or {}), seconds, done))


def load_checkpoint(run_dir: str | Path, method: str) -> dict[str, Any]:
    """The state `method` saved in `run_dir`; one line when there is none or another method wrote it."""
    ckpt = RunDir(run_dir).checkpoint(method)
    if ckpt is None:
        raise FileNotFoundError(
            f"no checkpoint at {Path(run_dir) / CHECKPOINT_NAME}; resume=<dir> must name a run directory that has one"
        )
    return ckpt.state


def load_counters(run_dir: str | Path) -> dict[str, float]:
    """The work counters saved with the checkpoint (empty when there is none)."""
    ckpt = RunDir(run_dir).checkpoint()
    return ckpt.usage if ckpt else {}


def load_seconds(run_dir: str | Path) -> float:
    """The optimization seconds saved with the checkpoint (0 when there is none)."""
    ckpt = RunDir(run_dir).checkpoint()
    return ckpt.seconds if ckpt else 0.0


def has_checkpoint(run_dir: str | Path) -> bool:
    return RunDir(run_dir).has_checkpoint()


def rng_to_json(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_from_json(data: list[Any]) -> random.Random:
    rng = random.Random()
    version, internal, gauss = data
    rng.setstate((version, tuple(internal), gauss))
    return rng

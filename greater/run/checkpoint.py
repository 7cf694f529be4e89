"""checkpoint.json: an optimizer's state after its last completed step, written atomically.

Plain JSON, readable without torch and without unpickling: every optimizer saves a dict of lists,
numbers and strings (a `random.Random` state goes through `rng_to_json`).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

CHECKPOINT_NAME = "checkpoint.json"
CHECKPOINT_VERSION = 2


def save_checkpoint(
    run_dir: str | Path,
    method: str,
    state: dict[str, Any],
    counters: dict[str, float] | None = None,
    seconds: float = 0.0,
) -> Path:
    """Write through a temporary file and rename, so a kill mid-write keeps the previous checkpoint.

    `counters` is the model's work so far (LanguageModel.counters) and `seconds` the optimization time so far:
    a resumed run starts from both, so its budget and its reported compute cover the whole run, not only the
    part after the resume."""
    path = Path(run_dir) / CHECKPOINT_NAME
    tmp = path.with_name(path.name + ".tmp")
    payload = {
        "version": CHECKPOINT_VERSION,
        "method": method,
        "state": state,
        "counters": counters or {},
        "seconds": seconds,
    }
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: str | Path, method: str) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; resume=<dir> must name a run directory that has one")
    payload = json.loads(path.read_text())
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} has checkpoint version {payload.get('version')}, this greater reads "
            f"{CHECKPOINT_VERSION}; start a new run"
        )
    if payload.get("method") != method:
        raise ValueError(
            f"{path} was written by optimizer={payload.get('method')}, not {method}; "
            f"resume with optimizer={payload.get('method')}"
        )
    return payload["state"]


def _payload(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def load_counters(run_dir: str | Path) -> dict[str, float]:
    """The work counters saved with the checkpoint (empty when there are none)."""
    return _payload(run_dir).get("counters", {})


def load_seconds(run_dir: str | Path) -> float:
    """The optimization seconds saved with the checkpoint (0 when there are none, as in older checkpoints)."""
    return float(_payload(run_dir).get("seconds", 0.0))


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CHECKPOINT_NAME).exists()


def rng_to_json(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_from_json(data: list[Any]) -> random.Random:
    rng = random.Random()
    version, internal, gauss = data
    rng.setstate((version, tuple(internal), gauss))
    return rng

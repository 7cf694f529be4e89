"""checkpoint.json: an optimizer's state after its last completed step, written atomically.

Plain JSON, readable without torch and without unpickling: every optimizer saves a dict of lists,
numbers and strings (a `random.Random` state goes through `rng_to_json`).

Never half written: the payload goes to a temporary file that is flushed to disk and then renamed over the
old one, so a kill, a power cut or a full disk mid-write leaves the previous checkpoint whole. A checksum of
the state is saved with it, so a truncated or hand-edited checkpoint.json is refused by name rather than
resumed from silently wrong numbers.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

CHECKPOINT_NAME = "checkpoint.json"
CHECKPOINT_VERSION = 2  # the checksum is optional within version 2: checkpoints written before it still load


class CheckpointError(ValueError):
    """checkpoint.json cannot be read or written; the message names the file and what to do."""


def state_digest(state: dict[str, Any]) -> str:
    """A checksum of the state as saved (sorted keys: the same state always gives the same digest)."""
    # through JSON first: the digest is of what is read back (int keys become strings, tuples lists)
    return hashlib.sha256(json.dumps(json.loads(json.dumps(state)), sort_keys=True).encode()).hexdigest()


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
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: two writers never share one
    payload = {
        "version": CHECKPOINT_VERSION,
        "method": method,
        "state": state,
        "counters": counters or {},
        "seconds": seconds,
        "sha256": state_digest(state),
    }
    text = json.dumps(payload)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename: a power cut cannot leave an empty file
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        kept = "the previous checkpoint is kept" if path.exists() else "no earlier checkpoint exists"
        fix = "free some space" if err.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
        raise CheckpointError(
            f"could not write {path} ({err.strerror or err}); {kept}; {fix} and continue with resume={run_dir}"
        ) from None
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a platform without directory fds skips it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(run_dir: str | Path, method: str) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; resume=<dir> must name a run directory that has one")
    payload = read_payload(path)
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


def read_payload(path: Path) -> dict[str, Any]:
    """The whole checkpoint, checked: complete JSON, the fields every checkpoint has, the state's checksum."""
    fix = f"restore it from a copy, or delete it to start the run again from step 0 (resume={path.parent})"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{path} is not a checkpoint (not UTF-8 text); {fix}") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is truncated or damaged ({err.msg} at char {err.pos}); {fix}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("state"), dict):
        raise CheckpointError(f'{path} is not a checkpoint (no "state" object); {fix}')
    digest = payload.get("sha256")
    if digest is not None and digest != state_digest(payload["state"]):
        raise CheckpointError(f"{path} was changed after it was written (its checksum does not match); {fix}")
    return payload


def _payload(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT_NAME
    return read_payload(path) if path.exists() else {}


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

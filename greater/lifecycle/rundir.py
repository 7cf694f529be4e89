"""The run directory: every file name in it, and the one way a file in it is written and read.

    config.yaml          the resolved config                 (RunDir.write_config / read by resume)
    checkpoint.json      the optimizer's state after a step  (RunDir.checkpoint / write_checkpoint)
    result.json          what the run found                  (greater.lifecycle.results.RunResult)
    history.jsonl        one line a step                     (greater.callbacks.jsonl)
    progress.png         accuracy and time by step           (greater.callbacks.plots)
    predictions_<model>_<kind>.jsonl   per-example test predictions (greater.evaluation.store)
    evaluations/         the test predictions so far, while the run evaluates (greater.evaluation.store)

Files are written whole through `write_atomic` (a temporary file flushed to disk, then a rename), so a kill,
a power cut or a full disk mid-write keeps the previous version; history.jsonl alone is appended to, a line a
step, so a killed run keeps its steps. checkpoint.json carries a checksum of its state, so a truncated or
hand-edited one is refused by name rather than resumed from silently wrong numbers.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CONFIG_NAME = "config.yaml"
CHECKPOINT_NAME = "checkpoint.json"
RESULT_NAME = "result.json"
HISTORY_NAME = "history.jsonl"
PLOT_NAME = "progress.png"
SHARED_EVALUATIONS = "evaluations"  # the test predictions a sweep's jobs share; a run's own while it evaluates
CHECKPOINT_VERSION = 2


class CheckpointError(ValueError):
    """checkpoint.json cannot be read or written; the message names the file and what to do."""


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`: readers
    see the old file or the new one, never half of one. The temporary name carries the process id, so parallel
    sweep jobs writing one shared file do not clobber each other's temporary; the last rename wins. On an
    OSError (a full disk) the temporary is removed and the old file is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename: a power cut cannot leave an empty file
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a platform without directory descriptors skips it."""
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


def state_digest(state: dict[str, Any]) -> str:
    """A checksum of the state as it reads back (through JSON, sorted keys: one state, one digest)."""
    return hashlib.sha256(json.dumps(json.loads(json.dumps(state)), sort_keys=True).encode()).hexdigest()


def read_payload(path: Path) -> dict[str, Any]:
    """The whole checkpoint, checked: complete JSON, a state object, the state's checksum when it has one
    (checkpoints written before the checksum still load)."""
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


def publish_dir(tmp: str | Path, target: str | Path) -> Path:
    """Move a directory written aside (`tmp`) to `target` in one rename; when another process published
    `target` first, keep its copy and remove `tmp`. For caches built by several sweep jobs at once (a
    converted model); greater.models.sources does the same by hand today."""

    tmp, target = Path(tmp), Path(target)
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    return write_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file; an absent file has none (a run that has not written it yet)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class Checkpoint:
    """checkpoint.json: an optimizer's state after its last completed step, with the work and time spent so
    far, so a resumed run's budget and reported compute cover the whole run. Plain JSON, readable without
    torch and without unpickling: `state` holds lists, numbers and strings only."""

    method: str
    state: dict[str, Any]
    usage: dict[str, float] = field(default_factory=dict)  # the run's usage when it was saved (Ledger.flat)
    seconds: float = 0.0  # optimization seconds so far
    steps_done: int = 0  # completed steps; a resumed run's first step is steps_done + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "method": self.method,
            "state": self.state,
            "counters": self.usage,
            "seconds": self.seconds,
            "steps_done": self.steps_done,
            "sha256": state_digest(self.state),
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any], where: str | Path = CHECKPOINT_NAME) -> Checkpoint:
        if payload.get("version") != CHECKPOINT_VERSION:
            raise ValueError(
                f"{where} has checkpoint version {payload.get('version')}, this greater reads "
                f"{CHECKPOINT_VERSION}; start a new run"
            )
        state = payload["state"]
        return cls(
            method=payload.get("method", ""),
            state=state,
            usage=dict(payload.get("counters", {})),
            seconds=float(payload.get("seconds", 0.0)),
            steps_done=int(payload["steps_done"]) if "steps_done" in payload else steps_in(state),
        )


def steps_in(state: dict[str, Any]) -> int:
    """Completed steps of a checkpoint read without `steps_done` (one written before it was added), or saved
    through `save_checkpoint` without it (tests). The run's own checkpoints (greater.lifecycle.loop.save_step) always
    carry it: their "step" and "history" are its envelope, not a method's keys."""
    if "step" in state:
        return int(state["step"])
    return len(state.get("history", []))


class RunDir:
    """One run's directory; it names every file in it and reads and writes the config and checkpoint."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def result(self) -> Path:
        return self.path / RESULT_NAME

    @property
    def history(self) -> Path:
        return self.path / HISTORY_NAME

    @property
    def plot(self) -> Path:
        return self.path / PLOT_NAME

    @property
    def checkpoint_file(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @staticmethod
    def predictions_name(model: str, kind: str) -> str:
        """The file of `model`'s predictions for the `kind` (initial | final) prompt, relative to the run."""
        return f"predictions_{model}_{kind}.jsonl"

    def predictions(self, model: str, kind: str) -> Path:
        return self.path / self.predictions_name(model, kind)

    def has_checkpoint(self) -> bool:
        return self.checkpoint_file.exists()

    def has_result(self) -> bool:
        return self.result.exists()

    def mkdir(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def write_config(self, cfg: Any) -> Path:
        return write_atomic(self.config, OmegaConf.to_yaml(cfg, resolve=True))

    def checkpoint(self, method: str | None = None) -> Checkpoint | None:
        """The checkpoint, read once (None when there is none); `method` given: it must have written it."""
        if not self.has_checkpoint():
            return None
        ckpt = Checkpoint.from_json(read_payload(self.checkpoint_file), self.checkpoint_file)
        if method is not None and ckpt.method != method:
            raise ValueError(
                f"{self.checkpoint_file} was written by optimizer={ckpt.method}, not {method}; "
                f"resume with optimizer={ckpt.method}"
            )
        return ckpt

    def write_checkpoint(self, ckpt: Checkpoint) -> Path:
        """Atomic; a failed write (a full disk) keeps the previous checkpoint and stops with one line."""
        path = self.checkpoint_file
        try:
            return write_atomic(path, json.dumps(ckpt.to_json()))
        except OSError as err:
            kept = "the previous checkpoint is kept" if path.exists() else "no earlier checkpoint exists"
            fix = "free some space" if err.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
            raise CheckpointError(
                f"could not write {path} ({err.strerror or err}); {kept}; {fix} and continue with resume={self.path}"
            ) from None

"""history.jsonl: one JSON line a step, flushed as it happens, so a killed run keeps its history."""

from __future__ import annotations

import json
from pathlib import Path

from greater.callbacks.base import Callback
from greater.lifecycle.rundir import HISTORY_NAME, RunDir, read_jsonl, write_jsonl
from greater.records import StepRecord

__all__ = ["HISTORY_NAME", "JsonlHistory", "read_history"]


def read_history(path: Path) -> list[dict]:
    return read_jsonl(path)


class JsonlHistory(Callback):
    def __init__(self, run_dir: Path, start_step: int = 0) -> None:
        self.path = RunDir(run_dir).history
        if start_step and self.path.exists():
            # A resumed run replays from start_step: drop lines it will write again.
            write_jsonl(self.path, [h for h in read_history(self.path) if h["step"] < start_step])
        elif self.path.exists():
            self.path.unlink()

    def on_step_end(self, record: StepRecord) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record.to_dict()) + "\n")

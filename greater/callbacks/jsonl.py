"""history.jsonl: one JSON line a step, flushed as it happens, so a killed run keeps its history."""

from __future__ import annotations

import json
from pathlib import Path

from greater.callbacks.base import Callback
from greater.records import StepRecord

HISTORY_NAME = "history.jsonl"


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class JsonlHistory(Callback):
    def __init__(self, run_dir: Path, start_step: int = 0) -> None:
        self.path = Path(run_dir) / HISTORY_NAME
        if start_step and self.path.exists():
            # A resumed run replays from start_step: drop lines it will write again.
            kept = [h for h in read_history(self.path) if h["step"] < start_step]
            self.path.write_text("".join(json.dumps(h) + "\n" for h in kept))
        elif self.path.exists():
            self.path.unlink()

    def on_step_end(self, record: StepRecord) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record.to_dict()) + "\n")

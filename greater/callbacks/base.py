"""The callback protocol: the engine calls these hooks and knows nothing else of logging."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greater.lifecycle.results import RunResult, TestRow
    from greater.records import RunInfo, StepRecord

log = logging.getLogger(__name__)


class Callback:
    """Base class with no-op hooks; subclasses override what they need. Every hook gets a typed value:
    `RunInfo` at the start, a `StepRecord` a step, a `TestRow` per (model, prompt) evaluated on the test
    split, and the `RunResult` that result.json holds at the end."""

    def on_run_start(self, run_info: RunInfo) -> None: ...

    def on_step_end(self, record: StepRecord) -> None: ...

    def on_generation(self, done: int, total: int) -> None:
        """Generation progress: `done` of `total` sequences finished (called after each batch)."""

    def on_evaluation_end(self, row: TestRow) -> None: ...

    def on_run_end(self, result: RunResult) -> None: ...

    def close(self) -> None: ...


class CallbackList(Callback):
    """Fans every hook out to its members; a failing callback is logged once and never ends the run."""

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self.callbacks = list(callbacks or [])
        self._warned: set[int] = set()

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            try:
                getattr(cb, hook)(*args)
            except Exception as err:
                if id(cb) not in self._warned:
                    log.warning("callback %s failed in %s (%s); continuing without it", type(cb).__name__, hook, err)
                    self._warned.add(id(cb))

    def on_run_start(self, run_info: RunInfo) -> None:
        self._call("on_run_start", run_info)

    def on_step_end(self, record: StepRecord) -> None:
        self._call("on_step_end", record)

    def on_generation(self, done: int, total: int) -> None:
        self._call("on_generation", done, total)

    def on_evaluation_end(self, row: TestRow) -> None:
        self._call("on_evaluation_end", row)

    def on_run_end(self, result: RunResult) -> None:
        self._call("on_run_end", result)

    def close(self) -> None:
        self._call("close")

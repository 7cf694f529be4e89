"""SIGINT and SIGTERM as a stop at the next safe point, not a kill in the middle of a step.

SLURM sends SIGTERM before it pre-empts or times out a job; Ctrl-C sends SIGINT. Inside `stop_on_signals()`
the first signal only sets a flag; the step loop calls `raise_if_stopped()` between steps (after the last
step's checkpoint is written), so a stop loses at most the step in flight, and the test evaluation calls it
between generation batches (inside `in_flight("evaluation batch")`, after the batch's predictions are kept),
so a stop there loses at most the batch in flight. A second signal raises at once; a third, should cleanup
hang, ends the process on the spot.

    with stop_on_signals():
        try:
            optimize(optimizer, ...)       # the loop raises RunStopped at its next step boundary
        except RunStopped as stop:
            print(stop.line(run_dir)); sys.exit(stop.exit_code)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # the signals received inside stop_on_signals, in order
_in_flight: list[str] = []  # what a first signal waits for, innermost last (none: a step)


class RunStopped(KeyboardInterrupt):
    """A run stopped by a signal; the last completed step's checkpoint is kept. A KeyboardInterrupt, so that
    `except Exception` in the code it passes through does not swallow it."""

    def __init__(self, signum: int, at_once: bool = False, unit: str = "step") -> None:
        self.signum, self.at_once, self.unit = signum, at_once, unit
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

    def line(self, run_dir: str | Path) -> str:
        name = signal.Signals(self.signum).name
        if self.unit == "evaluation batch" and not self.at_once:
            return (
                f"{name}: stopped between evaluation batches; the finished test predictions are saved in "
                f"{run_dir}; continue with resume={run_dir}"
            )
        where = "mid-step: the step in flight is lost" if self.at_once else "at a step boundary"
        return f"{name}: stopped {where}; the last completed step is saved in {run_dir}; continue with resume={run_dir}"


def stop_requested() -> int | None:
    """The first signal received inside `stop_on_signals`, or None."""
    return _received[0] if _received else None


def raise_if_stopped() -> None:
    """The safe point: raise `RunStopped` when a stop was asked for. Call it where nothing is half done."""
    if _received:
        raise RunStopped(_received[0], unit=_unit())


def _unit() -> str:
    return _in_flight[-1] if _in_flight else "step"


@contextmanager
def in_flight(unit: str) -> Iterator[None]:
    """Inside the block a first signal waits for the `unit` in flight ("evaluation batch"), not a step: its
    message says so, and so does the stop's line."""
    _in_flight.append(unit)
    try:
        yield
    finally:
        _in_flight.pop()


def _handle(signum: int, frame) -> None:
    _received.append(signum)
    name = signal.Signals(signum).name
    if len(_received) == 1:
        sys.stderr.write(f"{name}: stopping after the {_unit()} in flight; send it again to stop at once\n")
    elif len(_received) == 2:
        raise RunStopped(signum, at_once=True)
    else:  # cleanup after the second signal hangs: end now (a checkpoint is never half written, see checkpoint.py)
        os._exit(128 + signum)


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = SIGNALS) -> Iterator[None]:
    """Turn `signals` into a stop at the next `raise_if_stopped()` for the duration of the block; the previous
    handlers come back after it. Outside the main thread (where Python cannot set handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in signals}
    _received.clear()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _received.clear()

"""Loss and accuracy by step, as a PNG in the run directory (written at the end of the run)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from greater.callbacks.base import Callback
from greater.callbacks.jsonl import read_history
from greater.lifecycle.rundir import PLOT_NAME, RunDir
from greater.records import StepRecord

if TYPE_CHECKING:
    from greater.lifecycle.results import RunResult

__all__ = ["PLOT_NAME", "PlotCallback"]


class PlotCallback(Callback):
    def __init__(self, run_dir: Path) -> None:
        run = RunDir(run_dir)
        self.path, self.history = run.plot, run.history
        self.records: list[StepRecord] = []

    def on_step_end(self, record: StepRecord) -> None:
        self.records.append(record)

    def on_run_end(self, result: RunResult) -> None:
        # history.jsonl holds every step, including those before a resume; this run's records are the fallback.
        if self.history.exists():
            self.records = [StepRecord.from_dict(h) for h in read_history(self.history)]
        if not self.records:
            return
        import matplotlib  # seconds to import, and its backend is set only when a run draws

        matplotlib.use("Agg")  # no display on servers and CI
        import matplotlib.pyplot as plt

        steps = [r.step for r in self.records]
        fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(10, 3.5))
        ax_acc.plot(steps, [_nan(r.train_score) for r in self.records], label="this step's prompt (train)")
        ax_acc.plot(steps, [_nan(r.best_score) for r in self.records], label="best so far")
        if any(r.dev_score is not None for r in self.records):
            ax_acc.plot(steps, [_nan(r.dev_score) for r in self.records], label="dev")
        ax_acc.set(xlabel="step", ylabel=f"accuracy ({self.records[-1].metric})", title="accuracy", ylim=(-0.05, 1.05))
        ax_time.plot(steps, [r.seconds for r in self.records], label="seconds")
        ax_time.set(xlabel="step", ylabel="seconds", title="time a step")
        for ax in (ax_acc, ax_time):
            ax.legend()
        method = self.records[-1].method
        fig.suptitle(f"{method}: {result.task} on {result.model}")
        fig.tight_layout()
        fig.savefig(self.path, dpi=100)
        plt.close(fig)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value

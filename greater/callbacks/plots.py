"""Loss and accuracy by step, as a PNG in the run directory (written at the end of the run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greater.callbacks.base import Callback
from greater.callbacks.jsonl import HISTORY_NAME, read_history
from greater.optimizers.base import StepRecord

PLOT_NAME = "progress.png"


class PlotCallback(Callback):
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / PLOT_NAME
        self.history = Path(run_dir) / HISTORY_NAME
        self.records: list[StepRecord] = []

    def on_step_end(self, record: StepRecord) -> None:
        self.records.append(record)

    def on_run_end(self, result: dict[str, Any]) -> None:
        # history.jsonl holds every step, including those before a resume; this run's records are the fallback.
        if self.history.exists():
            self.records = [StepRecord.from_dict(h) for h in read_history(self.history)]
        if not self.records:
            return
        import matplotlib

        matplotlib.use("Agg")  # no display on servers and CI
        import matplotlib.pyplot as plt

        steps = [r.step for r in self.records]
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
        ax_loss.plot(steps, [r.train_loss for r in self.records], label="chosen: answer loss")
        ax_loss.plot(steps, [r.best_train_loss for r in self.records], label="best: answer loss + fluency term")
        ax_loss.set(xlabel="step", ylabel="train loss", title="loss")
        ax_acc.plot(steps, [r.train_acc for r in self.records], label="chosen")
        ax_acc.plot(steps, [r.best_train_acc for r in self.records], label="best")
        ax_acc.set(xlabel="step", ylabel="train accuracy", title="accuracy", ylim=(-0.05, 1.05))
        for ax in (ax_loss, ax_acc):
            ax.legend()
        fig.suptitle(f"{result.get('task')} on {result.get('model')}")
        fig.tight_layout()
        fig.savefig(self.path, dpi=100)
        plt.close(fig)

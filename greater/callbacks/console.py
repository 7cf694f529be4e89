"""Progress on the console: a line a step, and a short summary at the end."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

from greater.callbacks.base import Callback
from greater.records import RunInfo, StepRecord

if TYPE_CHECKING:
    from greater.lifecycle.results import RunResult, TestRow


class ConsoleCallback(Callback):
    """`progress_bar`: draw a bar on `bar_stream` while a generation of several batches runs;
    None draws it only on a terminal, so log files stay clean."""

    def __init__(
        self, stream: TextIO | None = None, progress_bar: bool | None = None, bar_stream: TextIO | None = None
    ) -> None:
        self.stream = stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.show_bar = self.bar_stream.isatty() if progress_bar is None else progress_bar
        self._bar: tqdm | None = None

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_run_start(self, run_info: RunInfo) -> None:
        start = run_info.start_step
        resumed = f", resuming after step {start - 1}" if start > 1 else ""
        self._print(f"greater: {run_info.task} on {run_info.model} -> {run_info.run_dir}{resumed}")

    def on_step_end(self, record: StepRecord) -> None:
        self._print(
            f"{record.method} step {record.step:>3}  acc {_score(record.train_score)}  "
            f"best {_score(record.best_score)}  dev {_score(record.dev_score)}  {record.seconds:5.1f}s  "
            f"{record.summary()} | {record.prompt!r}"
        )

    def on_generation(self, done: int, total: int) -> None:
        if not self.show_bar:
            return
        if self._bar is None or self._bar.total != total or self._bar.n > done:
            if done >= total:  # a single batch: nothing to wait for
                return
            self._close_bar()
            self._bar = tqdm(
                total=total, desc="generating", unit="seq", leave=False, file=self.bar_stream, mininterval=0, miniters=1
            )  # batches are seconds apart: draw every one
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._close_bar()

    def on_evaluation_end(self, row: TestRow) -> None:
        self._print(
            f"test  {row.prompt_kind:<7} prompt on {row.model}: {row.metric} acc {row.acc:.3f} "
            f"[{row.ci_low:.3f}, {row.ci_high:.3f}] over {row.n} ({row.n_unparsed} unparsed)"
        )

    def on_run_end(self, result: RunResult) -> None:
        own = result.model
        rows = {(r.model, r.prompt_kind): r for r in result.test}
        lines = ["", "=" * 72, f"{result.task} on {own}: {result.steps} steps, {result.seconds['total']:.0f}s"]
        prompts = {"initial": result.initial_prompt, "final": result.final_prompt}
        for kind, prompt in prompts.items():
            row = rows.get((own, kind))
            acc = f"test acc {row.acc:.3f} (n={row.n})" if row else ""
            lines.append(f"{kind:>8} prompt: {prompt!r}  {acc}")
        for (model, kind), row in rows.items():
            if model != own:
                lines.append(f"{'':>8} on {model} ({kind}): test acc {row.acc:.3f} (n={row.n})")
        lines.append(_where_the_time_went(result.seconds))
        lines.append("=" * 72)
        self._print("\n".join(lines))


def _where_the_time_went(seconds: dict[str, float]) -> str:
    """Load, optimization, the rest before the test (the dev pick) and the test, from result.json's seconds
    (a record written before "load" was kept shows only the total)."""
    if "load" not in seconds:
        return f"{seconds['total']:.0f}s in all"
    before_test = seconds["until_evaluation"]
    parts = {
        "load": seconds["load"],
        "optimization": seconds["optimization"],
        "dev pick": max(before_test - seconds["load"] - seconds["optimization"], 0.0),
        "test": seconds["total"] - before_test,
    }
    return "time: " + ", ".join(f"{name} {value:.0f}s" for name, value in parts.items())


def _score(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"

"""docs/results/mini_tables.md from the powered experiment's committed records (issue 20): what the design can
detect, accuracy per arm with intervals, GReaTer against every other arm as paired tests with effect sizes, a
reading of each comparison, accuracy against compute, the gradient diagnostic, and every run.

Written by `python scripts/reproduce_tables.py --profile mini` (and `python scripts/powered.py tables`) between the
page's markers; the text around them is written by hand. Everything here reads committed files only, and
nothing in the output depends on where the checkout lies or when it runs, so a fresh clone regenerates the same
bytes.

Comparisons are read at the (task, seed) cell, the unit of replication (one search, one prompt): the mean
of the cells' paired differences, a cluster-bootstrap interval and a sign-flip p (greater/compare/). An
arm's accuracy row pools its seeds' questions (correct / total, Wilson 95%): it describes those prompts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from greater.compare.cells import by_task
from greater.compare.method_level import ALL_TASKS, MethodDifference, compare
from greater.compare.power import detectable_difference
from greater.evaluation.metrics import wilson_interval
from greater.lifecycle.results import RunResult
from recipes.gradient_summary import read_rows
from recipes.gradient_summary import table as diagnostic_table
from recipes.mini_tables import cell, plot_accuracy, plot_compute, splice
from recipes.powered import ARM_ORDER, ARMS
from recipes.powered_design import REFERENCE_ARM, TARGET, arm_cells, between_cell_sd, comparison_rows
from recipes.powered_design import final_rows as design_final_rows

ALPHA = 0.05


def final_rows(records: Path) -> pd.DataFrame:
    """One row per record: its final prompt's test row, with its dev accuracy and the arm's label."""
    rows = design_final_rows(records)
    rows["label"] = [ARMS[a].label for a in rows.arm]
    rows["dev_acc"] = [RunResult.read(Path(d)).dev_acc for d in rows.run_dir]
    rows["correct"] = (rows.acc * rows.n).round().astype(int)
    order = {a: i for i, a in enumerate(ARM_ORDER)}
    rows["order"] = [order[a] for a in rows.arm]
    return rows.sort_values(["model", "task", "order", "seed"]).reset_index(drop=True)


def accuracy(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, arm): test accuracy pooled over seeds with its interval, dev accuracy, compute."""
    out = []
    for (model, task, _, arm), group in rows.groupby(["model", "task", "order", "arm"], sort=True):
        correct, n = int(group.correct.sum()), int(group.n.sum())
        low, high = wilson_interval(correct, n)
        out.append(
            {
                "model": model,
                "task": task,
                "method": ARMS[arm].label,
                "arm": arm,
                "seeds": len(group),
                "n": n,
                "acc": 100 * correct / n,
                "ci_low": 100 * low,
                "ci_high": 100 * high,
                "unparsed %": 100 * group.n_unparsed.sum() / n,
                "dev acc": 100 * group.dev_acc.astype(float).mean(),
                "tokens": group.tokens.mean(),
                "rollouts": group.rollouts.mean(),
            }
        )
    return pd.DataFrame(out)


def reading(row: MethodDifference, detectable: float) -> str:
    """A comparison in words: a win or a loss only where the cells' interval excludes zero and the sign-flip
    test rejects; otherwise what this many cells could have seen."""
    excludes_zero = not row.ci_low <= 0 <= row.ci_high
    side = "wins" if row.diff > 0 else "loses"
    if row.p < ALPHA and excludes_zero:
        return f"GReaTer {side}"
    if excludes_zero and row.p <= 2 / 2**row.cells + 1e-12:
        return f"GReaTer {side} in every cell; {row.cells} cells cannot reach p < {ALPHA:g}"
    if detectable != detectable:
        return "cannot tell (too few cells)"
    return f"cannot tell (detects {detectable:.1f} points)"


def comparisons(rows: pd.DataFrame) -> pd.DataFrame:
    """GReaTer against every other arm with records, per task and over a model's tasks, read at the level of
    (task, seed) cells; the pooled-question McNemar test is the last, secondary column."""
    out = []
    for model, scope in rows.groupby("model", sort=True):
        for arm in [a for a in ARM_ORDER if a != REFERENCE_ARM and a in set(scope.arm)]:
            cells = arm_cells(scope, model, arm)
            if not cells:
                continue
            sd, _ = between_cell_sd(cells)
            sizes = {t: len(d) for t, d in by_task(cells).items()}
            for row in compare(cells):
                counts = list(sizes.values()) if row.scope == ALL_TASKS else [sizes[row.scope]]
                detectable = detectable_difference(sd, counts)
                out.append(
                    {
                        "model": model,
                        "vs": ARMS[arm].label,
                        "task": row.scope,
                        "cells": row.cells,
                        "method_diff": round(row.diff, 2),
                        "method_ci_low": round(row.ci_low, 2),
                        "method_ci_high": round(row.ci_high, 2),
                        "method_p": float(f"{row.p:.4g}"),
                        "detectable": round(detectable, 1),
                        "reading": reading(row, detectable),
                        "pairs": row.pairs,
                        "GReaTer only": row.only_a,
                        "other only": row.only_b,
                        "question_p": float(f"{row.mcnemar_p:.3g}"),
                    }
                )
    return pd.DataFrame(out)


def write_powered(records: Path, out_dir: Path, diagnostic_csv: Path) -> str:
    """The page's generated part, its CSVs and figures; returns the generated Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = final_rows(records)
    acc = accuracy(rows)
    tests = comparisons(rows)
    runs = rows[["model", "task", "label", "seed", "dev_acc", "acc", "n", "n_unparsed", "final_prompt"]]
    acc.round(3).to_csv(out_dir / "mini_accuracy.csv", index=False)
    tests.to_csv(out_dir / "mini_paired_tests.csv", index=False)
    runs.round(4).to_csv(out_dir / "mini_runs.csv", index=False)
    sections = [
        _design(rows, records),
        _accuracy(acc, out_dir),
        _tests(tests),
        _compute(acc, out_dir),
        _diagnostic(diagnostic_csv),
        _runs(runs),
    ]
    generated = "\n\n".join(s for s in sections if s)
    path = out_dir / "mini_tables.md"
    path.write_text(splice(path.read_text() if path.exists() else "", generated))
    return generated


def _design(rows: pd.DataFrame, records: Path) -> str:
    tasks = {m: sorted({f"synthetic/{t}" for t in g.task}) for m, g in rows.groupby("model", sort=True)}
    table = pd.DataFrame(comparison_rows(tasks, records)).to_markdown(index=False)
    return (
        "### What the design can detect, at the level of (task, seed) cells (t test, alpha 0.05, power 0.8)\n\n"
        "For every planned comparison over a model's tasks, primaries first: the between-cell sd of GReaTer's "
        "paired differences (measured where both arms ran, else the prior) split into question noise and "
        "between-search spread, the smallest difference the planned and the finished cells detect, and the cells "
        f"needed for {TARGET:g} points (docs/results/powered/design.md).\n\n" + table
    )


def _accuracy(acc: pd.DataFrame, out_dir: Path) -> str:
    parts = []
    for model, part in acc.groupby("model", sort=True):
        figure = f"mini_accuracy_{model}.png"
        plot_accuracy(part, out_dir / figure, f"dev-picked prompts on {model}, five seeds pooled")
        shown = part.assign(test=[cell(a, lo, hi) for a, lo, hi in zip(part.acc, part.ci_low, part.ci_high)])
        shown = shown[["task", "method", "seeds", "n", "test", "unparsed %", "dev acc", "rollouts"]]
        parts.append(
            f"### Test accuracy on {model} (%, seeds pooled, Wilson 95%)\n\n"
            f"{shown.round(1).to_markdown(index=False)}\n\n![test accuracy per arm and task, {model}]({figure})"
        )
    return "\n\n".join(parts)


def _tests(tests: pd.DataFrame) -> str:
    if tests.empty:
        return ""
    shown = pd.DataFrame(
        {
            "model": tests.model,
            "vs": tests.vs,
            "task": tests.task,
            "cells": tests.cells,
            "GReaTer minus other (points)": [
                _signed(d, lo, hi) for d, lo, hi in zip(tests.method_diff, tests.method_ci_low, tests.method_ci_high)
            ],
            "sign-flip p": [f"{p:.3g}" for p in tests.method_p],
            "reading": tests.reading,
            "questions (GReaTer only / other only)": [
                f"{n} ({b} / {c})" for n, b, c in zip(tests.pairs, tests["GReaTer only"], tests["other only"])
            ],
            "these prompts on these questions: McNemar p": [f"{p:.3g}" for p in tests.question_p],
        }
    )
    return (
        "### GReaTer against each arm, one paired difference per (task, seed) cell\n\n"
        "The estimate is the mean of the cells' differences in test accuracy (each cell: both arms' final prompts "
        "on the same seed's test questions); over tasks, each task weighs the same. Interval: 95% cluster "
        "bootstrap over cells within tasks, rescaled for few cells (greater/compare/method_level.py). p: exact "
        "sign-flip test over the cells. Reading: a win or a loss only where both exclude zero; otherwise what "
        "this many cells detect at the spread measured. The last two columns pool the questions of all cells: "
        "they say whether these particular prompts differ on these questions, not whether the method does.\n\n"
        + shown.to_markdown(index=False)
    )


def _signed(diff: float, low: float, high: float) -> str:
    interval = "no interval: one cell in a task" if low != low else f"{low:+.1f}, {high:+.1f}"
    return f"{diff:+.1f} [{interval}]"


def _compute(acc: pd.DataFrame, out_dir: Path) -> str:
    plot_compute(acc, out_dir / "mini_compute.png")
    shown = acc[["model", "task", "method", "tokens", "rollouts", "acc"]].round(1)
    return (
        "### Accuracy against compute (optimization tokens and training-and-dev rollouts, mean per run)\n\n"
        f"{shown.to_markdown(index=False)}\n\n![accuracy against optimization tokens](mini_compute.png)"
    )


def _diagnostic(csv: Path) -> str:
    if not csv.exists():
        return ""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in read_rows(csv):
        groups.setdefault((r["model"], r["task"]), []).append(r)
    return (
        "### Where the gradient's information is lost (scripts/gradient_diagnostic.py; "
        "docs/results/gradient_diagnostic.md)\n\n" + diagnostic_table(groups)
    )


def _runs(runs: pd.DataFrame) -> str:
    shown = runs.assign(
        dev_acc=(100 * runs.dev_acc.astype(float)).round(1),
        acc=(100 * runs.acc).round(1),
        final_prompt=runs.final_prompt.str.slice(0, 60),
    ).rename(columns={"label": "arm", "dev_acc": "dev %", "acc": "test %"})
    return f"### Every run (final prompt, first 60 characters)\n\n{shown.to_markdown(index=False)}"

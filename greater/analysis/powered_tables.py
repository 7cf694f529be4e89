"""docs/results/mini_tables.md from the powered experiment's committed records (issue 20): what the design can
detect, accuracy per arm with intervals, GReaTer against every other arm as paired tests with effect sizes, a
reading of each comparison, accuracy against compute, the gradient diagnostic, and every run.

Written by `python scripts/reproduce_tables.py --profile mini` (and `python scripts/powered.py tables`) between the
page's markers; the text around them is written by hand. Everything here reads committed files only, and
nothing in the output depends on where the checkout lies or when it runs, so a fresh clone regenerates the same
bytes.

Pairing: the same (seed, test question) answered by both arms' final prompts; seeds draw different splits.
Intervals: an arm's accuracy pools its seeds (correct / total), Wilson 95%; a paired difference has the Wald
interval of a difference of paired proportions.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from greater.analysis.gradient_summary import read_rows, why_table
from greater.analysis.gradient_summary import table as diagnostic_table
from greater.analysis.mini_tables import cell, plot_accuracy, plot_compute, splice
from greater.analysis.power import detectable_difference
from greater.analysis.powered import ARM_ORDER, ARMS, collect_records
from greater.analysis.powered_design import REFERENCE_ARM, comparison_rows
from greater.analysis.statistics import mcnemar_exact, paired_counts
from greater.evaluation.metrics import wilson_interval
from greater.run.results import RunResult

ALPHA = 0.05
POOLED = "all tasks"


def final_rows(records: Path) -> pd.DataFrame:
    """One row per record: its final prompt's test row, with its dev accuracy and the arm's label."""
    table = collect_records(records)
    rows = table[table.prompt_kind == "final"].copy()
    rows["arm"] = rows.optimizer
    rows["label"] = [ARMS[a].label for a in rows.arm]
    rows["task"] = [t.split("/")[-1] for t in rows.task]
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


def paired_difference(pairs: int, b: int, c: int) -> tuple[float, float, float]:
    """The paired difference in accuracy (b - c) / pairs with its Wald 95% interval, in points."""
    d = (b - c) / pairs
    se = math.sqrt(max((b + c) / pairs - d * d, 0.0) / pairs)
    return 100 * d, 100 * (d - 1.96 * se), 100 * (d + 1.96 * se)


def reading(diff: float, p: float, detectable: float) -> str:
    """A comparison in words: a win or a loss where the test rejects, otherwise what the design could have seen."""
    if p < ALPHA:
        return f"GReaTer {'wins' if diff > 0 else 'loses'}"
    return f"cannot tell (detects {detectable:.1f}+ points)" if detectable == detectable else "cannot tell"


def comparisons(rows: pd.DataFrame) -> pd.DataFrame:
    """GReaTer against every other arm with records, per task and over a model's tasks pooled."""
    out = []
    for model, scope in rows.groupby("model", sort=True):
        ours = scope[scope.arm == REFERENCE_ARM]
        tasks = sorted(set(ours.task))
        for arm in [a for a in ARM_ORDER if a != REFERENCE_ARM and a in set(scope.arm)]:
            theirs = scope[scope.arm == arm]
            per_task = {t: paired_counts(ours[ours.task == t], theirs[theirs.task == t]) for t in tasks}
            per_task = {t: c for t, c in per_task.items() if c[0]}
            if len(per_task) > 1:
                per_task[POOLED] = tuple(sum(c[i] for c in per_task.values()) for i in range(3))
            for task, (pairs, b, c) in per_task.items():
                diff, low, high = paired_difference(pairs, b, c)
                p = mcnemar_exact(b, c)
                detectable = 100 * detectable_difference(pairs, max((b + c) / pairs, 1e-3))
                out.append(
                    {
                        "model": model,
                        "vs": ARMS[arm].label,
                        "task": task,
                        "seeds": len(set(ours[ours.task == task].seed) & set(theirs[theirs.task == task].seed))
                        if task != POOLED
                        else "",
                        "pairs": pairs,
                        "GReaTer only": b,
                        "other only": c,
                        "difference (points)": f"{diff:+.1f} [{low:+.1f}, {high:+.1f}]",
                        "p": f"{p:.3g}",
                        "detectable (points)": f"{detectable:.1f}",
                        "reading": reading(diff, p, detectable),
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
        "### What the design can detect (exact McNemar, alpha 0.05, power 0.8)\n\n"
        "For every planned comparison, over the paired test questions of a task's five seeds: the smallest "
        "difference in accuracy the design detects, at the discordance the records show where both arms ran "
        "(the prior of 15% otherwise; docs/results/powered/design.md).\n\n" + table
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
    return (
        "### GReaTer against each arm: paired on the same (seed, test question)\n\n"
        "`GReaTer only`: questions GReaTer's prompt got right and the other's wrong; `other only`: the reverse. "
        "Difference: GReaTer minus the other, in points, 95% Wald interval; p: exact McNemar; detectable: what "
        "this many pairs detect at the discordance seen.\n\n" + tests.to_markdown(index=False)
    )


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
        "### The gradient's information (scripts/gradient_diagnostic.py; docs/results/gradient_diagnostic.md)\n\n"
        + diagnostic_table(groups)
        + "\n\nSizes and signs: rho of |predicted| against |actual| per pair; shares of the measured candidates "
        "predicted to lower the loss and actually raising it.\n\n" + why_table(groups)
    )


def _runs(runs: pd.DataFrame) -> str:
    shown = runs.assign(
        dev_acc=(100 * runs.dev_acc.astype(float)).round(1),
        acc=(100 * runs.acc).round(1),
        final_prompt=runs.final_prompt.str.slice(0, 60),
    ).rename(columns={"label": "arm", "dev_acc": "dev %", "acc": "test %"})
    return f"### Every run (final prompt, first 60 characters)\n\n{shown.to_markdown(index=False)}"

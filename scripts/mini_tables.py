"""The paper's Tables 1 and 2 in miniature (issue 12): accuracy with 95% intervals, compute, and exact
McNemar tests of GReaTer against each baseline over the same test examples.

Read through `python scripts/reproduce_tables.py --profile mini`; this module holds the statistics and the
rendering, so tests can check them against hand computations.

Intervals: a method's accuracy on a task is pooled over its seeds (correct / total over every seed's test
split), with a Wilson 95% interval on the pooled counts. Seeds draw different splits of the synthetic tasks,
so the pairing for McNemar is (seed, example id): the same question answered by both prompts.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from greater.evaluation.metrics import wilson_interval
from scripts.collect import outcomes

REFERENCE = "greater"  # the method every baseline is tested against


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b and c are the discordant pairs (only one of the two right).

    Under the null each discordant pair is a fair coin, so p = 2 * P(Binomial(b + c, 1/2) <= min(b, c)),
    capped at 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def final_rows(results: pd.DataFrame, method_names: dict[str, str]) -> pd.DataFrame:
    """Final-prompt rows, one per (task, method, model, evaluated model, seed): a resumed or repeated run
    keeps its latest directory, so the table does not count a seed twice."""
    rows = results[results.prompt_kind == "final"].copy()
    rows["method"] = rows.optimizer.map(method_names).fillna(rows.optimizer)
    rows["correct"] = (rows.acc * rows.n).round().astype(int)
    rows = rows.sort_values("run_dir")
    keys = ["task", "optimizer", "model", "eval_model", "seed"]
    return rows.drop_duplicates(keys, keep="last").reset_index(drop=True)


def accuracy_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per (method, task, model, evaluated model): pooled accuracy over seeds, interval, compute."""
    out = []
    for (method, task, model, eval_model), group in rows.groupby(["method", "task", "model", "eval_model"]):
        correct, n = int(group.correct.sum()), int(group.n.sum())
        low, high = wilson_interval(correct, n)
        out.append(
            {
                "method": method,
                "task": task,
                "model": model,
                "eval_model": eval_model,
                "seeds": ",".join(str(s) for s in sorted(group.seed)),
                "n": n,
                "acc": 100 * correct / n if n else float("nan"),
                "ci_low": 100 * low,
                "ci_high": 100 * high,
                "tokens": group.tokens.mean(),
                "rollouts": group.rollouts.mean(),
                "seconds": group.seconds.mean(),
            }
        )
    return pd.DataFrame(out)


def paired_tests(rows: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """GReaTer against each other method on the same (seed, example) pairs, per task and over all tasks."""
    out = []
    for (model, eval_model), scope in rows.groupby(["model", "eval_model"]):
        ours = scope[scope.optimizer == reference]
        for baseline in sorted(set(scope.optimizer) - {reference}):
            theirs = scope[scope.optimizer == baseline]
            per_task = [_pairs(ours[ours.task == t], theirs[theirs.task == t]) for t in sorted(set(ours.task))]
            shown = theirs.method.iloc[0]  # the display name, e.g. "ZS-CoT"
            for task, counts in zip(sorted(set(ours.task)), per_task):
                out.append(_test_row(model, eval_model, shown, task, counts))
            if len(per_task) > 1:
                total = tuple(sum(c[i] for c in per_task) for i in range(3))
                out.append(_test_row(model, eval_model, shown, "all tasks", total))
    return pd.DataFrame(out)


def _pairs(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[int, int, int]:
    """(pairs, only ours right, only theirs right) over the seeds both methods ran."""
    pairs = only_ours = only_theirs = 0
    for seed in sorted(set(ours.seed) & set(theirs.seed)):
        a = outcomes(ours[ours.seed == seed].predictions.iloc[0])
        b = outcomes(theirs[theirs.seed == seed].predictions.iloc[0])
        shared = sorted(a.keys() & b.keys())
        pairs += len(shared)
        only_ours += sum(a[i] and not b[i] for i in shared)
        only_theirs += sum(b[i] and not a[i] for i in shared)
    return pairs, only_ours, only_theirs


def _test_row(model: str, eval_model: str, baseline: str, task: str, counts: tuple[int, int, int]) -> dict:
    pairs, b, c = counts
    return {
        "model": model,
        "eval_model": eval_model,
        "baseline": baseline,
        "task": task,
        "pairs": pairs,
        "greater_only": b,
        "baseline_only": c,
        "p_value": mcnemar_exact(b, c),
    }


def cell(acc: float, low: float, high: float) -> str:
    return f"{acc:.1f} [{low:.1f}, {high:.1f}]"


def method_by_task(acc: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Method x task cells 'acc [low, high]', a mean over tasks, the seeds pooled, and the mean compute."""
    acc = acc.assign(cell=[cell(a, lo, hi) for a, lo, hi in zip(acc.acc, acc.ci_low, acc.ci_high)])
    table = acc.pivot(index="method", columns="task", values="cell")
    table["mean acc"] = acc.groupby("method").acc.mean().round(1)
    # Methods may have finished different seeds (a partial sweep): say which, beside the pooled numbers.
    table["seeds"] = acc.groupby("method").seeds.agg(lambda s: " / ".join(sorted(set(s))))
    table["tokens / run"] = acc.groupby("method").tokens.mean().round(0)
    table["rollouts / run"] = acc.groupby("method").rollouts.mean().round(0)
    ranked = [m for m in order if m in table.index] + sorted(set(table.index) - set(order))
    return table.loc[ranked]


def plot_accuracy(acc: pd.DataFrame, path: Path, title: str) -> None:
    """Grouped bars: a group per task, a bar per method, 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, methods = sorted(set(acc.task)), sorted(set(acc.method))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(tasks)), 4))
    for j, method in enumerate(methods):
        part = acc[acc.method == method].set_index("task").reindex(tasks)
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(tasks))]
        errors = [part.acc - part.ci_low, part.ci_high - part.acc]
        ax.bar(xs, part.acc, width, yerr=errors, capsize=2, label=method)
    ax.set_xticks(range(len(tasks)), [t.split("/")[-1] for t in tasks])
    ax.set_ylabel("test accuracy (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=4)
    _save(fig, path)


def plot_compute(acc: pd.DataFrame, path: Path) -> None:
    """Accuracy against optimization tokens: one point per (method, task, model), a colour per method and a
    marker per (task, model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    markers = "osD^v<>p*h"
    methods = sorted(set(acc.method))
    groups = sorted(set(zip(acc.task, acc.model)))
    for g, (task, model) in enumerate(groups):
        for method in methods:
            part = acc[(acc.task == task) & (acc.model == model) & (acc.method == method)]
            errors = [part.acc - part.ci_low, part.ci_high - part.acc]
            x = part.tokens.clip(lower=1)
            color = f"C{methods.index(method) % 10}"
            ax.errorbar(x, part.acc, yerr=errors, fmt=markers[g % len(markers)], color=color, capsize=2)
    for i, method in enumerate(methods):
        ax.scatter([], [], color=f"C{i % 10}", label=method)
    for g, (task, model) in enumerate(groups):
        ax.scatter([], [], color="grey", marker=markers[g % len(markers)], label=f"{task.split('/')[-1]}, {model}")
    ax.set_xscale("log")
    ax.set_xlabel("optimization tokens per run (generated + forwarded; 1 = none)")
    ax.set_ylabel("test accuracy (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    # No date or version in the file, so the same runs give the same bytes.
    fig.savefig(path, dpi=110, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)

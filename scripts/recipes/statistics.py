"""Statistics for the tables: a method's accuracy pooled over seeds with a Wilson 95% interval, and exact
McNemar tests of GReaTer against each baseline on the same (seed, test example) pairs.

Seeds draw different splits of the synthetic tasks, so the pairing is (seed, example id): the same question
answered by both prompts.
"""

from __future__ import annotations

import pandas as pd

from greater.compare.collect import outcomes
from greater.compare.method_level import mcnemar_exact
from greater.evaluation.metrics import wilson_interval
from recipes.methods import method_column, ordered

REFERENCE = "greater"  # the method every baseline is tested against


def final_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Final-prompt rows, one per (task, method, model, evaluated model, seed): a resumed or repeated run
    keeps its latest directory, so the table does not count a seed twice."""
    rows = results[results.prompt_kind == "final"].copy()
    rows["method"] = method_column(rows)  # a run with another writer is a method of its own
    rows["correct"] = (rows.acc * rows.n).round().astype(int)
    rows = rows.sort_values("run_dir")
    keys = ["task", "method", "model", "eval_model", "seed"]
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
        # each baseline by its display name ("ZS-CoT", "APO (writer: gemma3-270m)"), so writer rows are apart
        for shown in ordered(set(scope[scope.optimizer != reference].method)):
            theirs = scope[scope.method == shown]
            per_task = [paired_counts(ours[ours.task == t], theirs[theirs.task == t]) for t in sorted(set(ours.task))]
            for task, counts in zip(sorted(set(ours.task)), per_task):
                out.append(_test_row(model, eval_model, shown, task, counts))
            if len(per_task) > 1:
                total = tuple(sum(c[i] for c in per_task) for i in range(3))
                out.append(_test_row(model, eval_model, shown, "all tasks", total))
    return pd.DataFrame(out)


def paired_counts(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[int, int, int]:
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

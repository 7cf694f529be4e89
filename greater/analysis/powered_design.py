"""The powered experiment's design stated before it runs (issue 20): the tasks the screening chose and, for every
comparison, the smallest paired difference it can detect (exact McNemar, alpha 0.05, power 0.8).

The discordance rate (the share of test questions exactly one of two prompts gets right) decides what a paired
test can see. Before any record exists it is the rate the old mini tables saw (docs/results/mini_paired_tests.csv:
15% median, 4% to 29%, over 24 comparisons); once both arms of a comparison have records, the rate they show.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from greater.analysis.collect import outcomes
from greater.analysis.power import detectable_difference
from greater.analysis.powered import ARM_ORDER, ARMS, SEEDS, Job
from greater.analysis.screening import CEILING, keep_reason
from greater.run.results import RunResult

TASKS_PER_MODEL = 3
TEST_PER_SEED = 342  # 400 generated questions less 8 train and 50 dev
PRIOR_DISCORDANCE = 0.15
PRIOR_RANGE = (0.04, 0.29)
REFERENCE_ARM = "greater"
BUDGET_HOURS = 4.0  # the plan: four hours of the 2-core machine, two jobs at a time


def screened_tasks(screening_csv: Path) -> dict[str, list[str]]:
    """Per model, the kept tasks whose accuracy sits furthest from both chance and ceiling (at most
    TASKS_PER_MODEL): where a better prompt has the most room to show in either direction."""
    table = pd.read_csv(screening_csv)
    table["reason"] = [keep_reason(row) for _, row in table.iterrows()]
    kept = table[table.reason != ""].copy()
    kept["room"] = [
        min(a - c, CEILING - a) if r.startswith("between") else u
        for a, c, u, r in zip(kept.acc, kept.chance, kept.unparsed, kept.reason)
    ]
    chosen = {}
    for model, group in kept.groupby("model", sort=False):
        chosen[model] = list(group.sort_values("room", ascending=False).task[:TASKS_PER_MODEL])
    return chosen


def observed_discordance(records: Path, a: Job, b: Job) -> tuple[int, int] | None:
    """(pairs, discordant pairs) of two jobs' final prompts on their shared test questions, if both have records."""
    found = []
    for job in (a, b):
        path = records / job.key
        if not (path / "result.json").exists():
            return None
        row = RunResult.read(path).row(prompt_kind="final")
        found.append(outcomes(path / row.predictions_file))
    shared = found[0].keys() & found[1].keys()
    return len(shared), sum(found[0][i] != found[1][i] for i in shared)


def comparison_rows(tasks_by_model: dict[str, list[str]], records: Path) -> list[dict]:
    rows = []
    for model, tasks in tasks_by_model.items():
        for arm in [a for a in ARM_ORDER if a != REFERENCE_ARM]:
            for task in tasks:
                pairs = disc = 0
                for seed in SEEDS:
                    seen = observed_discordance(
                        records, Job(model, task, REFERENCE_ARM, seed), Job(model, task, arm, seed)
                    )
                    if seen:
                        pairs, disc = pairs + seen[0], disc + seen[1]
                rate, source = (disc / pairs, f"seen on {pairs} pairs") if pairs else (PRIOR_DISCORDANCE, "prior")
                n = TEST_PER_SEED * len(SEEDS)
                rows.append(
                    {
                        "model": model,
                        "comparison": f"GReaTer vs {arm}",
                        "task": task.split("/")[-1],
                        "pairs": n,
                        "discordance": f"{100 * rate:.0f}% ({source})",
                        "detectable (points)": _points(n, rate),
                    }
                )
            n_all = TEST_PER_SEED * len(SEEDS) * len(tasks)
            rows.append(
                {
                    "model": model,
                    "comparison": f"GReaTer vs {arm}",
                    "task": "all tasks pooled",
                    "pairs": n_all,
                    "discordance": f"{100 * PRIOR_DISCORDANCE:.0f}% (prior)",
                    "detectable (points)": _points(n_all, PRIOR_DISCORDANCE),
                }
            )
    return rows


def _points(n: int, rate: float) -> str:
    d = detectable_difference(n, max(rate, 1e-3))
    return "none" if d != d else f"{100 * d:.1f}"


def cost_rows(tasks_by_model: dict[str, list[str]], records: Path, parallel: int = 2) -> list[dict]:
    """Per arm: jobs with a record, their mean wall minutes (result.json seconds.total, one thread each, measured
    on whatever machine ran them), and the hours the arm's missing jobs need at `parallel` jobs at once."""
    rows, whole = [], 0.0
    for arm in ARM_ORDER:
        keys = [Job(m, t, arm, s).key for s in SEEDS for m, tasks in tasks_by_model.items() for t in tasks]
        minutes = [
            RunResult.read(records / k).seconds["total"] / 60 for k in keys if (records / k / "result.json").exists()
        ]
        mean = sum(minutes) / len(minutes) if minutes else None
        left = len(keys) - len(minutes)
        whole += len(keys) * mean / 60 / parallel if mean is not None else float("nan")
        rows.append(
            {
                "arm": arm,
                "records": f"{len(minutes)} / {len(keys)}",
                "minutes per job": "not measured yet" if mean is None else f"{mean:.1f}",
                "hours left": "-" if mean is None else f"{left * mean / 60 / parallel:.1f}",
                "hours, this arm and those before": "-" if whole != whole else f"{whole:.1f}",
            }
        )
    return rows


def within_budget(cost: list[dict], hours: float = BUDGET_HOURS) -> str:
    """A sentence: which arms, in run order, the budget holds, from cost_rows' cumulative hours."""
    fits = [
        r["arm"]
        for r in cost
        if r["hours, this arm and those before"] not in ("-",) and float(r["hours, this arm and those before"]) <= hours
    ]
    measured = [r for r in cost if r["hours, this arm and those before"] != "-"]
    if not measured:
        return "no arm is measured yet."
    if not fits:
        return f"{hours:g} hours do not hold even the first arm on every model and task."
    return f"{hours:g} hours hold {', '.join(fits)} on every model and task."


def design_page(tasks_by_model: dict[str, list[str]], records: Path) -> str:
    n = TEST_PER_SEED * len(SEEDS)
    lo, hi = (_points(n, r) for r in PRIOR_RANGE)
    arms = "\n".join(f"- `{a}`: {ARMS[a].what} (`{' '.join(ARMS[a].overrides)}`)" for a in ARM_ORDER)
    tasks = "\n".join(f"- {m}: {', '.join(t)}" for m, t in tasks_by_model.items())
    table = pd.DataFrame(comparison_rows(tasks_by_model, records)).to_markdown(index=False)
    cost = cost_rows(tasks_by_model, records)
    costs = pd.DataFrame(cost).to_markdown(index=False)
    return f"""# The powered experiment: design (issue 20)

Written by `python scripts/powered.py plan` before the runs, and again as records arrive (the discordance
column then shows what the runs saw instead of the prior).

## Protocol
Per (model, task, seed): 400 generated questions, seed-dependent splits of 8 train (the search), 50 dev (every
method's final pick, scored with the test parser) and {TEST_PER_SEED} test; 64 reasoning tokens; every method capped
at 352 training rollouts; GReaTer takes 14 steps (each of the 7 positions of "Let's think step by step." twice).
Five seeds ({", ".join(map(str, SEEDS))}). Arms, in the order they run (seeds and test size before arms, so a
stopped experiment still has its main comparisons on every seed):

{arms}

Tasks, from the committed screening (docs/results/screening.md; the kept tasks with the most room between
chance and ceiling, at most {TASKS_PER_MODEL} per model):

{tasks}

## What it can detect
Exact McNemar, two-sided, alpha 0.05, power 0.8, over the {n} paired test questions of a task's five seeds.
At the prior discordance of {100 * PRIOR_DISCORDANCE:.0f}% a task detects
{_points(n, PRIOR_DISCORDANCE)} points; over the prior's range (4% to 29%), {lo} to {hi} points. The design
therefore meets the 5-point target per task. Pooling the tasks of a model triples the pairs.

{table}

## Cost, and what fits
Measured from the records (one thread a job, two jobs at once on the 2-core machine; wall minutes include the
other job's contention). Jobs run arm by arm in the order above, every seed of an arm before the next arm, so
the main comparisons (ZS-CoT, GReaTer, random ranking) fill first; `python scripts/powered.py run` continues.
The last column is the whole design's wall time up to and including each arm at two jobs at a time, from the
measured means; {within_budget(cost)}

{costs}
"""

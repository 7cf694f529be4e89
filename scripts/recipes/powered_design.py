"""The powered experiment's design stated before it runs (issue 20): the tasks the screening chose and, for every
comparison, the smallest difference it can detect at the level of (task, seed) cells (greater/compare/power.py),
from the spread between cells that the records show, or a prior before they show one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from greater.compare.cells import Cell, by_task, cells_of
from greater.compare.power import cells_needed, detectable_difference, pooled_sd
from greater.lifecycle.results import RunResult
from recipes.powered import ARM_ORDER, ARMS, SEEDS, Job, collect_records
from recipes.screening import CEILING, keep_reason

TASKS_PER_MODEL = 3
TEST_PER_SEED = 342  # 400 generated questions less 8 train and 50 dev
# Before two arms share cells: the between-cell sd of paired differences in the first runs (GReaTer minus
# random ranking on SmolLM2-135M, 11 cells, docs/results/mini_runs.csv, issue 32), rounded.
PRIOR_SD = 11.0
TARGET = 5.0  # points: the difference the next experiments are sized to detect
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


def final_rows(records: Path) -> pd.DataFrame:
    """One row per record: its final prompt's test row, the arm in `arm` and the task's short name."""
    table = collect_records(records)
    rows = table[table.prompt_kind == "final"].copy()
    rows["arm"] = rows.optimizer
    rows["task"] = [t.split("/")[-1] for t in rows.task]
    return rows.reset_index(drop=True)


def arm_cells(rows: pd.DataFrame, model: str, arm: str) -> list[Cell]:
    """GReaTer against `arm` on `model`: the (task, seed) cells both have a record for."""
    scope = rows[rows.model == model]
    return cells_of(scope[scope.arm == REFERENCE_ARM], scope[scope.arm == arm])


def between_cell_sd(cells: list[Cell]) -> tuple[float, str]:
    """The comparison's between-cell sd of paired differences (pooled within tasks) and where it comes from:
    the cells where both arms ran, else PRIOR_SD."""
    sd = pooled_sd(by_task(cells))
    return (sd, f"measured on {len(cells)} cells") if sd == sd else (PRIOR_SD, "prior")


def comparison_rows(tasks_by_model: dict[str, list[str]], records: Path, target: float = TARGET) -> list[dict]:
    """Per model and arm, GReaTer against it over the model's tasks: cells planned and done, the between-cell
    sd, what the planned and the done cells detect, and the cells that detect `target` points."""
    rows_ = final_rows(records) if any(records.rglob("result.json")) else None
    out = []
    for model, tasks in tasks_by_model.items():
        for arm in [a for a in ARM_ORDER if a != REFERENCE_ARM]:
            cells = arm_cells(rows_, model, arm) if rows_ is not None else []
            sd, source = between_cell_sd(cells)
            done = [len(d) for d in by_task(cells).values()]
            needed = cells_needed(sd, len(tasks), target)
            out.append(
                {
                    "model": model,
                    "comparison": f"GReaTer vs {arm}",
                    "cells planned": len(tasks) * len(SEEDS),
                    "cells done": len(cells),
                    "between-cell sd": f"{sd:.1f} ({source})",
                    "detects, planned": _points(detectable_difference(sd, [len(SEEDS)] * len(tasks))),
                    "detects, done": _points(detectable_difference(sd, done)) if done else "-",
                    f"cells for {target:g} points": needed if needed > 0 else "more than 10000",
                }
            )
    return out


def _points(d: float) -> str:
    return "none" if d != d else f"{d:.1f}"


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
    arms = "\n".join(f"- `{a}`: {ARMS[a].what} (`{' '.join(ARMS[a].overrides)}`)" for a in ARM_ORDER)
    tasks = "\n".join(f"- {m}: {', '.join(t)}" for m, t in tasks_by_model.items())
    table = pd.DataFrame(comparison_rows(tasks_by_model, records)).to_markdown(index=False)
    cost = cost_rows(tasks_by_model, records)
    costs = pd.DataFrame(cost).to_markdown(index=False)
    return f"""# The powered experiment: design (issue 20)

Written by `python scripts/powered.py plan` before the runs, and again as records arrive (the between-cell sd
then comes from the cells both arms ran instead of the prior).

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
The unit of replication is the (task, seed) cell: one search, one final prompt, one test accuracy, paired with
the other arm's on the same seed's test questions. The comparison's estimate is the mean of the cells' paired
differences, tasks weighing the same; its power is that of a two-sided t test at alpha 0.05 (power 0.8) with
the between-cell sd of the paired differences, pooled within tasks: measured on the cells both arms have
run, else the prior of {PRIOR_SD:g} points (GReaTer vs random ranking's spread in the first 11 cells). The
question noise of {TEST_PER_SEED} test questions is part of that spread; most of it is between searches.
Each row is one comparison over the model's tasks; the last column is the number of cells (the same in
every task) that would detect {TARGET:g} points.

{table}

## Cost, and what fits
Measured from the records (one thread a job, two jobs at once on the 2-core machine; wall minutes include the
other job's contention). Jobs run arm by arm in the order above, every seed of an arm before the next arm, so
the main comparisons (ZS-CoT, GReaTer, random ranking) fill first; `python scripts/powered.py run` continues.
The last column is the whole design's wall time up to and including each arm at two jobs at a time, from the
measured means; {within_budget(cost)}

{costs}
"""

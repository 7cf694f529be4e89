"""What the powered experiment's jobs cost and what machine time buys (issue 35): wall minutes per job from the
records, rescaled to a test size; the hours the pending jobs need; the cells that fit in some hours and what
they detect; and, per test size, the hours the primary design needs to reach its target.

A job's minutes are its result.json seconds.total, with the final prompt's test scoring (its test row's seconds)
rescaled to the questions scored: scoring time grows with the questions, the rest of a job (load, search, dev
pick) does not. Measured with one thread a job, two jobs at once on the 2-core machine, so the minutes include
the other job's contention.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from greater.compare.power import detectable_difference
from greater.lifecycle.results import RunResult
from recipes.powered import ARM_ORDER, EMBEDDED, TEST_QUESTIONS, Job, jobs, pending, primary_arms, seeds_of
from recipes.powered_design import (
    REFERENCE_ARM,
    TARGET,
    TEST_PER_SEED,
    arm_cells,
    comparisons,
    points_text,
    records_rows,
    spread_of,
)

PARALLEL = 2  # jobs at once, one thread each
HOURS = 8.0  # the machine time the page prices: "what do 8 more hours give"
TEST_SIZES = (TEST_PER_SEED, 200, 150, 100)
Minutes = dict[tuple[str, str], tuple[float, str]]


def measured_minutes(records: Path, model: str, arm: str, questions: int) -> list[float]:
    """Wall minutes of each (model, arm) job on record, its test scoring rescaled to `questions`."""
    out = []
    for path in sorted(records.glob(f"{model}/*/{arm}/seed*/result.json")):
        result = RunResult.read(path.parent)
        final = next(row for row in result.test if row.prompt_kind == "final")
        out.append((result.seconds["total"] + final.seconds * (questions / final.n - 1)) / 60)
    return out


def model_factor(records: Path, model: str, other: str, questions: int) -> float:
    """How much longer a job takes on `model` than on `other`: the ratio of their ZS-CoT jobs, the one arm run
    first on both; 1 until both are measured."""
    here, there = (measured_minutes(records, m, "zs_cot", questions) for m in (model, other))
    return float(np.mean(here) / np.mean(there)) if here and there else 1.0


def job_minutes(records: Path, model: str, arm: str, questions: int) -> tuple[float, str]:
    """A (model, arm) job's estimated wall minutes and how they were had: measured on this model; else on the
    other embedded model, times model_factor; else as a GReaTer job (a search at the same rollout budget, so
    likely low for exact ranking, which scores every candidate exactly); nan when nothing is measured."""
    own = measured_minutes(records, model, arm, questions)
    if own:
        return float(np.mean(own)), f"measured ({len(own)} jobs)"
    for other in [m for m in EMBEDDED if m != model]:
        there = measured_minutes(records, other, arm, questions)
        if there:
            factor = model_factor(records, model, other, questions)
            return float(np.mean(there)) * factor, f"{other}'s x {factor:.2f}"
    if arm != REFERENCE_ARM:
        minutes, how = job_minutes(records, model, REFERENCE_ARM, questions)
        return minutes, f"as greater: {how}"
    return math.nan, "not measured"


def minutes_table(records: Path, models: list[str], questions: int) -> Minutes:
    return {(m, a): job_minutes(records, m, a, questions) for m in models for a in ARM_ORDER}


def hours_of(todo: list[Job], minutes: Minutes) -> float:
    """Wall hours of `todo` at PARALLEL jobs at once."""
    return sum(minutes[(j.model, j.arm)][0] for j in todo) / PARALLEL / 60


def fitting(todo: list[Job], minutes: Minutes, hours: float = HOURS) -> list[Job]:
    """The first jobs of `todo`, in run order, that end within `hours` at PARALLEL jobs at once."""
    spent = np.cumsum([minutes[(j.model, j.arm)][0] for j in todo]) / PARALLEL / 60
    return [job for job, end in zip(todo, spent) if end <= hours]


def cells_per_task(rows: pd.DataFrame | None, extra: list[Job], model: str, tasks: list[str], arm: str) -> list[int]:
    """Per task, the seeds where GReaTer and `arm` both have a record or a job in `extra`."""
    have = set() if rows is None else set(zip(rows.model, rows.task, rows.arm, rows.seed))
    have |= {(j.model, j.task.split("/")[-1], j.arm, j.seed) for j in extra}
    seeds = {s for (_, _, _, s) in have}
    short = [t.split("/")[-1] for t in tasks]
    return [sum({(model, t, REFERENCE_ARM, s), (model, t, arm, s)} <= have for s in seeds) for t in short]


def primary_detectable(
    tasks_by_model: dict[str, list[str]], records: Path, extra: list[Job], questions: int
) -> dict[tuple[str, str], tuple[int, float]]:
    """Per (model, primary comparison): the cells the records plus `extra` hold, and what they detect at the
    spread expected with `questions` a cell (nan while a task has none)."""
    rows = records_rows(records)
    arms, best, _ = comparisons(rows)
    out = {}
    for arm in [a for a in arms if a in primary_arms(best)]:
        for model, tasks in tasks_by_model.items():
            parts, _ = spread_of(arm_cells(rows, model, arm) if rows is not None else [])
            counts = cells_per_task(rows, extra, model, tasks, arm)
            detects = detectable_difference(parts.sd_at(questions), counts) if min(counts) else math.nan
            out[(model, arm)] = sum(counts), detects
    return out


def seeds_for_target(tasks_by_model: dict[str, list[str]], records: Path, questions: int, target: float) -> int:
    """The seeds every primary comparison needs for `target` points at `questions` a cell (the widest decides)."""
    rows = records_rows(records)
    arms, best, _ = comparisons(rows)
    seeds = 2
    for arm in [a for a in arms if a in primary_arms(best)]:
        for model, tasks in tasks_by_model.items():
            parts, _ = spread_of(arm_cells(rows, model, arm) if rows is not None else [])
            while detectable_difference(parts.sd_at(questions), [seeds] * len(tasks)) > target and seeds < 200:
                seeds += 1
    return seeds


def widest_sd(tasks_by_model: dict[str, list[str]], records: Path, questions: int) -> float:
    """The largest between-cell sd expected at `questions` a cell over the primary comparisons: it sets the
    seeds the design needs."""
    rows = records_rows(records)
    arms, best, _ = comparisons(rows)
    return max(
        spread_of(arm_cells(rows, model, arm) if rows is not None else [])[0].sd_at(questions)
        for arm in arms
        if arm in primary_arms(best)
        for model in tasks_by_model
    )


def test_size_rows(tasks_by_model: dict[str, list[str]], records: Path, target: float = TARGET) -> list[dict]:
    """Per test size: the minutes one seed of every primary job takes, the seeds the primary design needs for
    `target` points and the hours its pending jobs take, and the information (1 / variance) its cells buy per
    machine-hour relative to the full split: above 1, a smaller split buys power more cheaply."""
    best = comparisons(records_rows(records))[1]
    primary = primary_arms(best)
    out, costs = [], []
    for questions in TEST_SIZES:  # the full split first: the others are relative to it
        minutes = minutes_table(records, list(tasks_by_model), questions)
        seeds = seeds_for_target(tasks_by_model, records, questions, target)
        todo = pending(jobs(tasks_by_model, primary, range(seeds), best), records)
        per_seed = sum(minutes[(m, a)][0] * len(tasks) for m, tasks in tasks_by_model.items() for a in primary)
        sd = widest_sd(tasks_by_model, records, questions)
        costs.append(per_seed * sd**2)  # variance x time: its inverse is information per hour
        out.append(
            {
                "test questions": questions,
                "widest primary sd": round(sd, 1),
                "minutes, one seed of every primary job": round(per_seed) if per_seed == per_seed else "not measured",
                "information per hour, vs the full split": round(costs[0] / costs[-1], 2),
                f"seeds for {target:g} points": seeds,
                "hours for the primary design": round(hours_of(todo, minutes), 1),
            }
        )
    return out


def primary_hours(tasks_by_model: dict[str, list[str]], records: Path) -> float:
    """Wall hours of the primary arms' pending jobs at TEST_QUESTIONS a job (nan while an arm cannot be priced)."""
    best = comparisons(records_rows(records))[1]
    minutes = minutes_table(records, list(tasks_by_model), TEST_QUESTIONS)
    return hours_of(pending(jobs(tasks_by_model, primary_arms(best), None, best), records), minutes)


def cost_rows(tasks_by_model: dict[str, list[str]], records: Path) -> list[dict]:
    """Per arm: its cells done of planned ("n of N"), its minutes per job on each model at TEST_QUESTIONS, and
    the hours its missing jobs need at PARALLEL jobs at once."""
    best = comparisons(records_rows(records))[1]
    minutes = minutes_table(records, list(tasks_by_model), TEST_QUESTIONS)
    rows = []
    for arm in primary_arms(best) + [a for a in ARM_ORDER if a not in primary_arms(best)]:
        every = jobs(tasks_by_model, [arm], seeds_of(arm, best), best)
        todo = pending(every, records)
        rows.append(
            {
                "arm": arm,
                "kind": "primary" if arm in primary_arms(best) else "secondary",
                "progress": f"{len(every) - len(todo)} of {len(every)} cells",
                f"minutes per job at {TEST_QUESTIONS} questions": "; ".join(
                    f"{m}: {minutes[(m, arm)][0]:.1f} ({minutes[(m, arm)][1]})" for m in tasks_by_model
                ),
                "hours left": points_text(hours_of(todo, minutes)),
            }
        )
    return rows

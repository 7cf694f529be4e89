"""The powered experiment's design stated before it runs (issue 20): the tasks the screening chose and, for every
comparison, the smallest difference it can detect at the level of (task, seed) cells (greater/compare/power.py),
from the spread between cells that the records show, or a prior before they show one.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from greater.compare.cells import Cell, by_task, cells_of
from greater.compare.power import SpreadParts, cells_needed, decompose, detectable_difference
from recipes.powered import (
    ARM_ORDER,
    PROVISIONAL_TEXT_ARM,
    TEST_QUESTIONS,
    TEXT_ARMS,
    collect_records,
    primary_arms,
    seeds_of,
)
from recipes.screening import CEILING, keep_reason

TASKS_PER_MODEL = 3
TEST_PER_SEED = 342  # 400 generated questions less 8 train and 50 dev
# Before two arms share cells: the between-cell sd of paired differences in the first runs (GReaTer minus
# random ranking on SmolLM2-135M, 11 cells, docs/results/mini_runs.csv, issue 32), rounded.
PRIOR_SD = 11.0
# And its question noise: the per-question variance of paired outcomes (points^2), about 3300 in both comparisons
# measured on SmolLM2 (issue 35), rounded; it sets how the prior spread changes with the test size.
PRIOR_PER_QUESTION_VAR = 3300.0
TARGET = 6.0  # points: the difference the primary comparisons are sized to detect (issue 35)
REFERENCE_ARM = "greater"


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


def records_rows(records: Path) -> pd.DataFrame | None:
    """final_rows, or None before the first record."""
    return final_rows(records) if any(records.rglob("result.json")) else None


def best_text_arm(rows: pd.DataFrame | None) -> str:
    """The text arm of the primary comparison: the one with the best mean test accuracy in the records, over the
    (model, task, seed) cells every text arm with records shares (all their records where they share none), so
    no arm wins by having run on easier tasks; PROVISIONAL_TEXT_ARM while no text arm has a record."""
    text = None if rows is None else rows[rows.arm.isin(TEXT_ARMS)]
    if text is None or text.empty:
        return PROVISIONAL_TEXT_ARM
    cells = [set(zip(g.model, g.task, g.seed)) for _, g in text.groupby("arm")]
    shared = set.intersection(*cells)
    if shared:
        text = text[[c in shared for c in zip(text.model, text.task, text.seed)]]
    means = text.groupby("arm").acc.mean()
    return str(means.idxmax())


def prior_spread() -> SpreadParts:
    """The prior between-cell sd at the full test split, split as the measured comparisons split theirs."""
    noise = PRIOR_PER_QUESTION_VAR / TEST_PER_SEED
    return SpreadParts(0, PRIOR_SD, math.sqrt(noise), math.sqrt(PRIOR_SD**2 - noise), PRIOR_PER_QUESTION_VAR)


def spread_of(cells: list[Cell]) -> tuple[SpreadParts, str]:
    """A comparison's between-cell spread, split (greater.compare.power.decompose), and where it comes from: the
    cells where both arms ran, else the prior."""
    parts = decompose(cells)
    if parts.total_sd == parts.total_sd:
        return parts, f"measured on {len(cells)} cells"
    return prior_spread(), "prior"


def between_cell_sd(cells: list[Cell]) -> tuple[float, str]:
    """The comparison's between-cell sd of paired differences (pooled within tasks) and its source."""
    parts, source = spread_of(cells)
    return parts.total_sd, source


def comparison_kind(arm: str, best_text: str, measured: bool) -> str:
    if arm == best_text:
        return "primary (best text method)" if measured else "primary (best text method, provisional)"
    return "primary" if arm in primary_arms(best_text) else "secondary"


def comparisons(rows: pd.DataFrame | None) -> tuple[list[str], str, bool]:
    """The compared arms, primaries first (ARM_ORDER within each), the best text arm and whether records
    chose it."""
    best = best_text_arm(rows)
    measured = rows is not None and bool(rows.arm.isin(TEXT_ARMS).any())
    primary = [a for a in primary_arms(best) if a != REFERENCE_ARM]
    return primary + [a for a in ARM_ORDER if a not in primary and a != REFERENCE_ARM], best, measured


def comparison_rows(tasks_by_model: dict[str, list[str]], records: Path, target: float = TARGET) -> list[dict]:
    """Per comparison (primaries first) and model, GReaTer against the arm over the model's tasks: cells planned
    and done, the between-cell sd and its split, what the planned and the done cells detect, and the cells that
    detect `target` points at TEST_QUESTIONS a cell."""
    rows_ = records_rows(records)
    arms, best, measured = comparisons(rows_)
    out = []
    for arm in arms:
        for model, tasks in tasks_by_model.items():
            cells = arm_cells(rows_, model, arm) if rows_ is not None else []
            parts, source = spread_of(cells)
            planned_sd = parts.sd_at(TEST_QUESTIONS)  # the cells still to run score TEST_QUESTIONS questions
            planned = [len(seeds_of(arm, best))] * len(tasks)
            done = [len(d) for d in by_task(cells).values()]
            needed = cells_needed(planned_sd, len(tasks), target)
            out.append(
                {
                    "model": model,
                    "comparison": f"GReaTer vs {arm}",
                    "kind": comparison_kind(arm, best, measured),
                    "cells planned": sum(planned),
                    "cells done": len(cells),
                    "between-cell sd": f"{parts.total_sd:.1f} ({source})",
                    "question / search sd": f"{parts.question_sd:.1f} / {parts.search_sd:.1f}",
                    f"sd at {TEST_QUESTIONS} questions": round(planned_sd, 1),
                    "detects, planned": points_text(detectable_difference(planned_sd, planned)),
                    "detects, done": points_text(detectable_difference(parts.total_sd, done)) if done else "-",
                    f"cells for {target:g} points": needed if needed > 0 else "more than 10000",
                }
            )
    return out


def spread_rows(tasks_by_model: dict[str, list[str]], records: Path, sizes: tuple[int, ...]) -> list[dict]:
    """Per comparison with measured cells: its between-cell sd split into question noise and between-search
    spread, and the sd and cells for TARGET points expected at each test size in `sizes`."""
    rows_ = records_rows(records)
    out = []
    for arm in comparisons(rows_)[0] if rows_ is not None else []:
        for model, tasks in tasks_by_model.items():
            cells = arm_cells(rows_, model, arm)
            parts = decompose(cells)
            if parts.total_sd != parts.total_sd:
                continue
            row = {"model": model, "comparison": f"GReaTer vs {arm}", "cells": len(cells)}
            row["questions a cell"] = round(sum(c.pairs for c in cells) / len(cells))
            row |= {"between-cell sd": parts.total_sd, "question sd": parts.question_sd}
            row |= {"between-search sd": parts.search_sd}
            for n in sizes:
                needed = cells_needed(parts.sd_at(n), len(tasks), TARGET)
                row[f"sd, cells for {TARGET:g} at {n}"] = f"{parts.sd_at(n):.1f}, {needed}"
            out.append(row)
    return out


def points_text(d: float) -> str:
    """A detectable difference as the tables show it: one decimal, or none where it cannot be had."""
    return "none" if d != d else f"{d:.1f}"

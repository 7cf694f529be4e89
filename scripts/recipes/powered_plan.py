"""docs/results/powered/design.md, written by `python scripts/powered.py plan`: the powered experiment's protocol,
what each comparison detects (recipes/powered_design.py), how its spread splits between question noise and
searches and what that means for the test size, and what the jobs cost (recipes/powered_cost.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recipes.powered import ARM_ORDER, ARMS, PRIMARY_SEEDS, SECONDARY_SEEDS, TEST_QUESTIONS, jobs, pending
from recipes.powered_cost import (
    HOURS,
    PARALLEL,
    TEST_SIZES,
    cost_rows,
    fitting,
    minutes_table,
    primary_detectable,
    primary_hours,
    test_size_rows,
)
from recipes.powered_design import (
    PRIOR_SD,
    TARGET,
    TASKS_PER_MODEL,
    TEST_PER_SEED,
    comparison_rows,
    comparisons,
    points_text,
    records_rows,
    spread_rows,
)


def after_hours_rows(tasks_by_model: dict[str, list[str]], records: Path) -> list[dict]:
    """Per primary comparison and model: the cells now and after the pending jobs that fit in HOURS, and what
    those detect at the spread expected with TEST_QUESTIONS a cell."""
    best = comparisons(records_rows(records))[1]
    minutes = minutes_table(records, list(tasks_by_model), TEST_QUESTIONS)
    fit = fitting(pending(jobs(tasks_by_model, ARM_ORDER, None, best), records), minutes)
    now = primary_detectable(tasks_by_model, records, [], TEST_QUESTIONS)
    later = primary_detectable(tasks_by_model, records, fit, TEST_QUESTIONS)
    return [
        {
            "model": model,
            "comparison": f"GReaTer vs {arm}",
            "cells now": now[(model, arm)][0],
            f"cells after {HOURS:g} hours": cells,
            "detects then": points_text(detects),
        }
        for (model, arm), (cells, detects) in later.items()
    ]


def test_size_sentence(sizes: list[dict]) -> str:
    """Which test size reaches the target in the fewest hours, against the one the protocol uses."""
    hours = {r["test questions"]: r["hours for the primary design"] for r in sizes}
    if any(h != h for h in hours.values()):
        return "No job is measured yet, so no test size can be priced."
    fewest = min(hours, key=lambda n: (hours[n], n))
    chosen = "" if fewest == TEST_QUESTIONS else f" (the protocol's {TEST_QUESTIONS} takes {hours[TEST_QUESTIONS]})"
    return (
        f"{fewest} questions a cell reach {TARGET:g} points on every primary comparison in the fewest hours, "
        f"{hours[fewest]} against {hours[TEST_PER_SEED]} with all {TEST_PER_SEED}{chosen}."
    )


def design_page(tasks_by_model: dict[str, list[str]], records: Path) -> str:
    arms = "\n".join(f"- `{a}`: {ARMS[a].what} (`{' '.join(ARMS[a].overrides)}`)" for a in ARM_ORDER)
    tasks = "\n".join(f"- {m}: {', '.join(t)}" for m, t in tasks_by_model.items())
    table = pd.DataFrame(comparison_rows(tasks_by_model, records)).to_markdown(index=False)
    spread = pd.DataFrame(spread_rows(tasks_by_model, records, TEST_SIZES)).to_markdown(index=False, floatfmt=".1f")
    sizes = test_size_rows(tasks_by_model, records)
    cost = cost_rows(tasks_by_model, records)
    hours = primary_hours(tasks_by_model, records)
    priced = "cannot be priced yet" if hours != hours else f"need {hours:.1f} hours at {PARALLEL} jobs at once"
    after = pd.DataFrame(after_hours_rows(tasks_by_model, records)).to_markdown(index=False)
    return f"""# The powered experiment: design (issues 20 and 35)

Written by `python scripts/powered.py plan` before the runs, and again as records arrive (the between-cell sd
then comes from the cells both arms ran instead of the prior).

## Protocol
Per (model, task, seed): 400 generated questions, seed-dependent splits of 8 train (the search), 50 dev (every
method's final pick, scored with the test parser) and {TEST_PER_SEED} test, of which a job scores the first
{TEST_QUESTIONS} (`evaluation.n_test={TEST_QUESTIONS}`; the 44 records of the earlier protocol scored all
{TEST_PER_SEED}, and a cell pairs two arms on the questions both scored); 64 reasoning tokens; every method capped at
352 training rollouts; GReaTer takes 14 steps (each of the 7 positions of "Let's think step by step." twice).

The primary comparisons are GReaTer against ZS-CoT, random ranking, exact ranking and the best text method
(the text arm, of PE2, GEPA and APO with a writer, with the best mean test accuracy on the cells they share in
the records; PE2, the strongest text baseline of the earlier mini tables, until one has records). Their
arms run on {len(PRIMARY_SEEDS)} seeds, the secondary arms on {len(SECONDARY_SEEDS)}. Jobs run primaries first, then
secondaries; within each, seed by seed (every arm, model and task of a seed before the next seed), so a
stopped experiment leaves whole cells of every primary comparison. Arms:

{arms}

Tasks, from the committed screening (docs/results/screening.md; the kept tasks with the most room between
chance and ceiling, at most {TASKS_PER_MODEL} per model):

{tasks}

## What it can detect
The unit of replication is the (task, seed) cell: one search, one final prompt, one test accuracy, paired with
the other arm's on the same seed's test questions. The comparison's estimate is the mean of the cells' paired
differences, tasks weighing the same; its power is that of a two-sided t test at alpha 0.05 (power 0.8) with
the between-cell sd of the paired differences, pooled within tasks: measured on the cells both arms have
run, else the prior of {PRIOR_SD:g} points (GReaTer vs random ranking's spread in the first 11 cells). That sd
splits into question noise and between-search spread (next section); the planned cells and the last column
use the sd expected at {TEST_QUESTIONS} questions a cell. Primaries first, each on both models.

{table}

## Test-split size: question noise against between-search spread
Question noise is estimated inside each cell from its paired per-question outcomes (the variance of the mean
of the per-question differences, about discordant rate / questions); the between-search spread is what the
between-cell variance holds beyond it (greater/compare/power.py `decompose`). Only question noise grows as the
test split shrinks, so the sd at n questions is sqrt(search sd^2 + per-question variance / n). Measured
comparisons:

{spread}

What each test size costs and buys for the primary design (every primary arm, both models, seeds added until
every primary comparison detects {TARGET:g} points; minutes from the records, test scoring rescaled):

{pd.DataFrame(sizes).to_markdown(index=False)}

{test_size_sentence(sizes)} The differences between test sizes are small beside the uncertainty of an sd
measured on a dozen cells (about a fifth of it): what matters is that question noise is the smaller part of
the spread, so a smaller split loses little power a cell and the machine time it saves goes to more seeds.

## Cost, progress, and what fits
Minutes per job from the records (one thread a job, {PARALLEL} jobs at once on the 2-core machine, so they include
the other job's contention), rescaled to {TEST_QUESTIONS} test questions; an arm not yet measured on a model takes
the other model's minutes times the two models' ZS-CoT ratio, and an arm measured nowhere GReaTer's. The
primary design's pending jobs {priced}. Progress per arm:

{pd.DataFrame(cost).to_markdown(index=False)}

What the next {HOURS:g} hours of `python scripts/powered.py run` give each primary comparison (the pending jobs in
run order that end within them):

{after}
"""

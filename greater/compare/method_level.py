"""Does method A beat method B? Inference at the level of (task, seed) cells, tasks as fixed strata.

The estimate is the mean of the cells' paired differences within each task; over tasks, the mean of the task
means (every task weighs the same, whatever its cell count).

The interval is a cluster bootstrap: cells are drawn with replacement within each task, each keeping its
questions whole, so question noise enters once, through the cell's own difference (drawing questions again
inside each drawn cell would count it twice and widen the interval for nothing). With 3 to 5 cells per task a
plain percentile bootstrap covers well under 95% (its spread is short by sqrt((n-1)/n) and it uses a normal
quantile where the spread is estimated from few cells), so each task's spread is rescaled by sqrt(n/(n-1)) and
the whole by the t quantile at (cells - tasks) degrees of freedom over the normal one. Simulated with a
10-point between-cell spread, this covers the true effect in about 95% of experiments from 3 cells on
(tests/test_method_level.py); the pooled question-level interval covers it in about half.

The p-value is an exact sign-flip test: under no method effect each cell's difference is as likely positive
as negative, so the estimate is referred to its value under all 2^n sign patterns (a seeded Monte Carlo sample
of them beyond 20 cells). The question-level McNemar test stays as a secondary reading of a different
question: do these prompts beat those on these questions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from greater.compare.cells import Cell, by_task

ALL_TASKS = "all tasks"
EXACT_FLIPS_UP_TO = 20  # cells; 2^20 sign patterns take about a second
RANDOM_FLIPS = 100_000
BOOTSTRAP_DRAWS = 10_000


@dataclass(frozen=True)
class MethodDifference:
    """A minus B over a scope (one task, or ALL_TASKS), in points."""

    scope: str
    cells: int
    diff: float
    ci_low: float
    ci_high: float
    p: float  # sign-flip test over the cells
    pairs: int  # the secondary, question-level reading: pooled questions and their discordant counts
    only_a: int
    only_b: int

    @property
    def mcnemar_p(self) -> float:
        """Exact McNemar over the pooled questions: these prompts against those, on these questions."""
        return mcnemar_exact(self.only_a, self.only_b)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1 when there are none)."""
    n = only_a + only_b
    return 1.0 if n == 0 else float(stats.binomtest(only_a, n, 0.5).pvalue)


def stratified_mean(diffs: Mapping[str, Sequence[float]]) -> float:
    """The mean over tasks of each task's mean cell difference."""
    return float(np.mean([np.mean(d) for d in diffs.values()]))


def cluster_interval(
    diffs: Mapping[str, Sequence[float]], level: float = 0.95, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> tuple[float, float]:
    """The cluster-bootstrap interval of `stratified_mean` (module docstring); nan when a task has one cell,
    since one cell says nothing of the spread between cells."""
    sizes = [len(d) for d in diffs.values()]
    if min(sizes) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    estimate = stratified_mean(diffs)
    replicates = np.zeros(draws)
    for d in diffs.values():  # tasks in a fixed order, so a seed gives the same draws
        values = np.asarray(d, dtype=float)
        n = len(values)
        means = values[rng.integers(0, n, size=(draws, n))].mean(axis=1)
        replicates += values.mean() + (means - values.mean()) * math.sqrt(n / (n - 1))
    replicates /= len(sizes)
    tail = (1 - level) / 2
    widen = stats.t.ppf(1 - tail, sum(sizes) - len(sizes)) / stats.norm.ppf(1 - tail)
    low, high = np.quantile(estimate + (replicates - estimate) * widen, [tail, 1 - tail])
    return float(low), float(high)


def sign_flip_p(diffs: Mapping[str, Sequence[float]], seed: int = 0) -> float:
    """Two-sided sign-flip p-value of `stratified_mean` (exact up to EXACT_FLIPS_UP_TO cells)."""
    values = np.concatenate([np.asarray(d, dtype=float) for d in diffs.values()])
    if not np.any(values):
        return 1.0
    # each cell's weight in the stratified mean: 1 / (tasks x its task's cells)
    weights = np.concatenate([np.full(len(d), 1 / (len(diffs) * len(d))) for d in diffs.values()])

    def statistic(x, axis):
        return np.sum(x * weights, axis=axis)

    flips = np.inf if len(values) <= EXACT_FLIPS_UP_TO else RANDOM_FLIPS
    result = stats.permutation_test(
        (values,), statistic, permutation_type="samples", n_resamples=flips, vectorized=True, rng=seed
    )
    return float(result.pvalue)


def compare(cells: Sequence[Cell], seed: int = 0) -> list[MethodDifference]:
    """A minus B per task (sorted) and, with more than one task, over tasks (ALL_TASKS, last)."""
    diffs = by_task(cells)
    scopes = [(task, {task: d}) for task, d in diffs.items()]
    if len(diffs) > 1:
        scopes.append((ALL_TASKS, diffs))
    out = []
    for scope, part in scopes:
        members = [c for c in cells if scope == ALL_TASKS or c.task == scope]
        low, high = cluster_interval(part, seed=seed)
        out.append(
            MethodDifference(
                scope=scope,
                cells=len(members),
                diff=stratified_mean(part),
                ci_low=low,
                ci_high=high,
                p=sign_flip_p(part, seed=seed),
                pairs=sum(c.pairs for c in members),
                only_a=sum(c.only_a for c in members),
                only_b=sum(c.only_b for c in members),
            )
        )
    return out

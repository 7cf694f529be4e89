"""What a method comparison can detect, from the spread between its (task, seed) cells.

The estimate is the stratified mean of cell differences (greater.compare.method_level); with a between-cell sd
`sd` of the paired differences (pooled within tasks) and n_k cells in task k of K, its standard error is
sd * sqrt(sum 1/n_k) / K, with (cells - tasks) degrees of freedom. The two-sided t test at level alpha then has
the power of a noncentral t, and the detectable difference is where that power reaches the target.

The between-cell sd has two sources (`decompose`): question noise, the sampling error of a cell's difference from
its finite test split, estimable inside each cell from its paired per-question outcomes; and the spread between
searches (another seed, another final prompt), the rest. Only the first shrinks with more test questions, so
`SpreadParts.sd_at` says what a test split of another size would give.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from greater.compare.cells import Cell, by_task


def pooled_sd(diffs: Mapping[str, Sequence[float]]) -> float:
    """The between-cell sd of paired differences, pooled within tasks (nan with no cell beyond one per task)."""
    dof = sum(len(d) for d in diffs.values()) - len(diffs)
    if dof < 1:
        return math.nan
    squares = sum(float(np.sum((np.asarray(d) - np.mean(d)) ** 2)) for d in diffs.values())
    return math.sqrt(squares / dof)


def t_test_power(difference: float, sd: float, cells_per_task: Sequence[int], alpha: float = 0.05) -> float:
    """Power of the two-sided t test of the stratified mean at a true difference (points)."""
    dof = sum(cells_per_task) - len(cells_per_task)
    se = sd * math.sqrt(sum(1 / n for n in cells_per_task)) / len(cells_per_task)
    critical = stats.t.ppf(1 - alpha / 2, dof)
    shift = difference / se
    wrong_side = float(np.nan_to_num(stats.nct.cdf(-critical, dof, shift)))  # scipy gives nan for ~0 here
    return float(stats.nct.sf(critical, dof, shift)) + wrong_side


def detectable_difference(sd: float, cells_per_task: Sequence[int], alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference (points) detected with the given power (nan without a degree of freedom)."""
    dof = sum(cells_per_task) - len(cells_per_task)
    if dof < 1 or not sd > 0:
        return math.nan
    se = sd * math.sqrt(sum(1 / n for n in cells_per_task)) / len(cells_per_task)
    upper = (stats.t.ppf(1 - alpha / 2, dof) + 4) * se  # power there is above 0.99
    return float(optimize.brentq(lambda d: t_test_power(d, sd, cells_per_task, alpha) - power, 1e-9, upper))


def cells_needed(
    sd: float, tasks: int, target: float, alpha: float = 0.05, power: float = 0.8, most: int = 10_000
) -> int:
    """The fewest cells (the same count in every task) that detect `target` points; -1 beyond `most`."""
    for per_task in range(2, most // tasks + 1):
        if detectable_difference(sd, [per_task] * tasks, alpha, power) <= target:
            return per_task * tasks
    return -1


def question_variance(cell: Cell) -> float:
    """The per-question variance (points^2) of a cell's paired outcomes: each question's difference is +1
    (only A right), -1 (only B) or 0, and the cell's difference is their mean, so its variance from the questions
    alone is this over `cell.pairs` (about discordant rate / pairs, in points^2 x 10^4)."""
    n = cell.pairs
    if n < 2:
        return math.nan
    mean = (cell.only_a - cell.only_b) / n
    return 1e4 * ((cell.only_a + cell.only_b) / n - mean**2) * n / (n - 1)


@dataclass(frozen=True)
class SpreadParts:
    """A comparison's between-cell sd split into question noise and between-search spread (points)."""

    cells: int
    total_sd: float  # pooled_sd of the cells' differences
    question_sd: float  # question noise in one cell's difference, at the cells' own test sizes
    search_sd: float  # what remains once question noise is taken out (0 when noise explains it all)
    per_question_var: float  # points^2: a cell's question variance is this over its test questions

    def sd_at(self, questions: int) -> float:
        """The between-cell sd expected with `questions` test questions a cell (the same searches)."""
        return math.sqrt(self.search_sd**2 + self.per_question_var / questions)


def decompose(cells: Sequence[Cell]) -> SpreadParts:
    """Split `pooled_sd` of the cells' differences into question noise and between-search spread.

    Within a task, the sample variance of independent differences with variances v_c estimates the between-search
    variance plus the mean of the v_c; pooling weighs task k by its n_k - 1 degrees of freedom, so the question
    part is pooled the same way and subtracted (nan with no cell beyond one per task)."""
    per_task: dict[str, list[Cell]] = {}
    for cell in cells:
        per_task.setdefault(cell.task, []).append(cell)
    total = pooled_sd(by_task(cells))
    if total != total:
        return SpreadParts(len(cells), math.nan, math.nan, math.nan, math.nan)

    def pooled(value) -> float:  # the dof-weighted mean over tasks of each task's mean value
        weighted = sum((len(cs) - 1) * np.mean([value(c) for c in cs]) for cs in per_task.values())
        return float(weighted / (len(cells) - len(per_task)))

    noise = pooled(lambda c: question_variance(c) / c.pairs)
    search = math.sqrt(max(total**2 - noise, 0.0))
    return SpreadParts(len(cells), total, math.sqrt(noise), search, pooled(question_variance))

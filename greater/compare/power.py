"""What a method comparison can detect, from the spread between its (task, seed) cells.

The estimate is the stratified mean of cell differences (greater.compare.method_level); with a between-cell sd
`sd` of the paired differences (pooled within tasks) and n_k cells in task k of K, its standard error is
sd * sqrt(sum 1/n_k) / K, with (cells - tasks) degrees of freedom. The two-sided t test at level alpha then has
the power of a noncentral t, and the detectable difference is where that power reaches the target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import optimize, stats


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

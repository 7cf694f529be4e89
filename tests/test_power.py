"""The McNemar power against brute force over every outcome of a small paired design, and the screening rule."""

import math

import pandas as pd
import pytest

from greater.analysis.power import detectable_difference, mcnemar_power
from greater.analysis.screening import keep_reason
from greater.analysis.statistics import mcnemar_exact


def brute_force_power(n: int, discordant: float, difference: float, alpha: float) -> float:
    """Sum the trinomial probability of every (only A, only B, agree) outcome whose exact p-value is <= alpha."""
    pa, pb = (discordant + difference) / 2, (discordant - difference) / 2
    total = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            if mcnemar_exact(b, c) <= alpha:
                ways = math.comb(n, b) * math.comb(n - b, c)
                total += ways * pa**b * pb**c * (1 - discordant) ** (n - b - c)
    return total


@pytest.mark.parametrize("n,discordant,difference", [(30, 0.3, 0.1), (40, 0.5, 0.2), (25, 0.2, 0.0)])
def test_power_equals_brute_force_enumeration(n, discordant, difference):
    assert mcnemar_power(n, discordant, difference) == pytest.approx(
        brute_force_power(n, discordant, difference, 0.05), abs=1e-9
    )


def test_detectable_difference_has_the_asked_power_and_no_less_would():
    d = detectable_difference(1500, 0.15)
    assert mcnemar_power(1500, 0.15, d) >= 0.8 > mcnemar_power(1500, 0.15, d - 0.002)
    assert 0.02 < d < 0.04  # the normal approximation 2.8 * sqrt(0.15 / 1500) = 0.028
    assert math.isnan(detectable_difference(10, 0.1))  # 10 pairs cannot show anything


def test_screening_keeps_tasks_between_chance_and_ceiling_or_with_format_failures():
    row = dict(acc=0.4, ci_low=0.3, ci_high=0.48, unparsed=0.0, chance=0.5)
    assert keep_reason(pd.Series({**row, "ci_low": 0.45, "ci_high": 0.55})) == ""  # at chance
    assert keep_reason(pd.Series(row)).startswith("below chance")
    assert keep_reason(pd.Series({**row, "chance": 0.2})) == "between chance and ceiling"
    assert keep_reason(pd.Series({**row, "unparsed": 0.3})) == "format failures a prompt can fix"
    assert keep_reason(pd.Series({**row, "ci_low": 0.85, "ci_high": 0.95, "chance": 0.2})) == ""  # at ceiling

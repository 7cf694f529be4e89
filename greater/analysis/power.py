"""The power of the exact McNemar test, for stating what a paired design can detect before it runs (issue 20).

Two prompts answer the same n test questions. A pair is discordant when exactly one is right, with probability
`discordant`; the accuracy difference is d = P(only A right) - P(only B right). The test conditions on the number
of discordant pairs m ~ Binomial(n, discordant) and rejects when the split of those m pairs is too uneven for a
fair coin (greater.analysis.statistics.mcnemar_exact). Its power sums, over m, P(m) times the chance that
Binomial(m, q) with q = (discordant + d) / (2 discordant) lands in the rejection region.
"""

from __future__ import annotations

import math
from functools import cache


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


@cache
def critical_count(m: int, alpha: float) -> int:
    """The largest k with 2 * P(Binomial(m, 1/2) <= k) <= alpha (-1 when no split of m pairs is significant):
    the test rejects when the smaller side of the m discordant pairs has at most k."""
    tail, k = 0.0, -1
    for j in range(m // 2 + 1):
        tail += math.exp(_log_pmf(j, m, 0.5))
        if 2 * tail > alpha:
            break
        k = j
    return k


def conditional_power(m: int, q: float, alpha: float) -> float:
    """P(reject) given m discordant pairs, each won by A with probability q."""
    k = critical_count(m, alpha)
    if k < 0:
        return 0.0
    low = sum(math.exp(_log_pmf(j, m, q)) for j in range(k + 1))
    high = sum(math.exp(_log_pmf(m - j, m, q)) for j in range(k + 1))
    return min(1.0, low + high)


def mcnemar_power(n: int, discordant: float, difference: float, alpha: float = 0.05) -> float:
    """Power of the two-sided exact McNemar test at level alpha for n pairs (see the module docstring)."""
    if not 0 < discordant <= 1 or not 0 <= abs(difference) <= discordant:
        raise ValueError(f"need 0 < discordant <= 1 and |difference| <= discordant, got {discordant}, {difference}")
    q = (discordant + abs(difference)) / (2 * discordant)
    mean, spread = n * discordant, math.sqrt(n * discordant * (1 - discordant))
    lo, hi = max(0, int(mean - 8 * spread) - 1), min(n, int(mean + 8 * spread) + 2)  # the rest is < 1e-14
    return sum(math.exp(_log_pmf(m, n, discordant)) * conditional_power(m, q, alpha) for m in range(lo, hi + 1))


def detectable_difference(n: int, discordant: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest accuracy difference the design detects with the given power (nan if none up to
    `discordant`, the largest difference a discordance rate allows). Bisection: power grows with the difference."""
    if mcnemar_power(n, discordant, discordant, alpha) < power:
        return math.nan
    lo, hi = 0.0, discordant
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mcnemar_power(n, discordant, mid, alpha) < power else (lo, mid)
    return hi

"""Accuracy with a 95% Wilson score interval (better than the normal approximation for small n)."""

from __future__ import annotations

import math


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# The names an accuracy is recorded under. Two scores are called "accuracy" in this project and differ:
EXACT_MATCH = "exact_match"  # teacher-forced: greedy decoding after the extractor emits exactly the gold tokens;
#                              what the optimizers score train with (and dev under dev_metric=teacher_forced)
PARSED = "parsed"  # the evaluator's generate mode: a short greedy answer, parsed, compared with the gold
LOGLIK = "loglik"  # the evaluator's loglik mode: the most likely of the task's options after the extractor


def test_metric(mode: str) -> str:
    """The metric name of a test evaluation in evaluation.mode `mode`."""
    return LOGLIK if str(mode) == "loglik" else PARSED

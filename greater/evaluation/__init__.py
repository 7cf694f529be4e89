"""Evaluation of prompts on held-out examples.

The names load on first use: `greater.evaluation.metrics` (the metric names result.json records) stays
importable without torch."""

from __future__ import annotations

from greater.lazy import lazy_getattr

_EXPORTS = {
    "EvaluationResult": "greater.evaluation.evaluator",
    "Prediction": "greater.evaluation.evaluator",
    "evaluate_prompt": "greater.evaluation.evaluator",
    "PredictionStore": "greater.evaluation.store",
    "read_predictions": "greater.evaluation.store",
    "wilson_interval": "greater.evaluation.metrics",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)

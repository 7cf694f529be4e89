"""Evaluation of prompts on held-out examples.

The names load on first use: `greater.evaluation.metrics` (the metric names result.json records) stays
importable without torch."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvaluationResult": "greater.evaluation.evaluator",
    "Prediction": "greater.evaluation.evaluator",
    "evaluate_prompt": "greater.evaluation.evaluator",
    "PredictionStore": "greater.evaluation.store",
    "read_predictions": "greater.evaluation.store",
    "wilson_interval": "greater.evaluation.metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'greater.evaluation' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

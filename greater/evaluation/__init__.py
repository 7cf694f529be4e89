"""Evaluation of prompts on held-out examples."""

from greater.evaluation.evaluator import EvaluationResult, Prediction, evaluate_prompt
from greater.evaluation.metrics import wilson_interval

__all__ = ["EvaluationResult", "Prediction", "evaluate_prompt", "wilson_interval"]

"""Prompt optimizers: each implements `optimize(lm, task, train, callbacks, ...) -> OptimizationResult`."""

from greater.optimizers.base import CandidateScore, OptimizationResult, Optimizer, StepRecord
from greater.optimizers.greater import GreaterOptimizer
from greater.optimizers.zero_shot import ZeroShotOptimizer

__all__ = ["CandidateScore", "GreaterOptimizer", "OptimizationResult", "Optimizer", "StepRecord", "ZeroShotOptimizer"]

"""Prompt optimizers: each implements `optimize(lm, task, context) -> OptimizationResult`.

`build_optimizer(cfg.optimizer)` returns the one a config names; see base.py for the interface.
"""

from greater.optimizers.base import (
    BudgetConfig,
    OptimizationContext,
    OptimizationResult,
    Optimizer,
    OptimizerConfig,
)
from greater.optimizers.registry import build_optimizer, optimizers

__all__ = [
    "BudgetConfig",
    "OptimizationContext",
    "OptimizationResult",
    "Optimizer",
    "OptimizerConfig",
    "build_optimizer",
    "optimizers",
]

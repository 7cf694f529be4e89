"""Prompt optimizers: each offers a search that ends with candidate prompts (`search`, or the steps of a
`SteppedOptimizer`); `optimize(lm, task, context) -> OptimizationResult` runs it and the one final pick on dev.

`build_optimizer(cfg.optimizer)` returns the one a config names; see base.py for the interface.
"""

from greater.optimizers.base import (
    BudgetConfig,
    Found,
    OptimizationContext,
    OptimizationResult,
    Optimizer,
    OptimizerConfig,
)
from greater.optimizers.registry import build_optimizer, optimizers

__all__ = [
    "BudgetConfig",
    "Found",
    "OptimizationContext",
    "OptimizationResult",
    "Optimizer",
    "OptimizerConfig",
    "build_optimizer",
    "optimizers",
]

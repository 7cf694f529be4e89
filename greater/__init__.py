"""greater: GReaTer prompt optimization (gradients over reasoning) for small open language models.

The public names load on first use, so `python run.py --help` does not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "compose": "greater.api",
    "RunResult": "greater.run.results",
    "run": "greater.api",
    "load_model": "greater.api",
    "load_task": "greater.api",
    "LanguageModel": "greater.models.language_model",
    "GreaterOptimizer": "greater.optimizers.greater.optimizer",
    "GreaterConfig": "greater.optimizers.greater.config",
    "OptimizationContext": "greater.optimizers.base",
    "build_optimizer": "greater.optimizers.registry",
    "StepRecord": "greater.records",
    "ZeroShotOptimizer": "greater.optimizers.zero_shot",
    "OptimizationResult": "greater.optimizers.base",
    "Callback": "greater.callbacks.base",
    "Example": "greater.tasks.base",
    "Task": "greater.tasks.base",
    "evaluate_prompt": "greater.evaluation.evaluator",
    "EvaluationConfig": "greater.config",
    "ModelConfig": "greater.config",
    "TaskConfig": "greater.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'greater' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

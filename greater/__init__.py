"""greater: GReaTer prompt optimization (gradients over reasoning) for small open language models.

The public names load on first use, so `python run.py --help` does not wait for torch.
"""

from __future__ import annotations

from greater.lazy import lazy_getattr

_EXPORTS = {
    "compose": "greater.api",
    "RunResult": "greater.lifecycle.results",
    "run": "greater.lifecycle.runner",
    "optimize": "greater.lifecycle.loop",
    "load_model": "greater.models.language_model",
    "context_for": "greater.lifecycle.context",
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


__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

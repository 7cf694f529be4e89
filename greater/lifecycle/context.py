"""The context a method optimizes in, built one way for the runner, notebooks and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greater.callbacks.base import Callback, CallbackList
from greater.config import EvaluationConfig
from greater.engine.rollouts import Scorer
from greater.models.language_model import LanguageModel
from greater.optimizers.base import Budget, BudgetConfig, OptimizationContext
from greater.tasks import Task


def context_for(
    lm: LanguageModel,
    task: Task,
    *,
    prompt: str | None = None,
    placement: str = "after",
    max_reasoning_tokens: int = 64,
    seed: int = 0,
    run_dir: Path | None = None,
    callbacks: CallbackList | list[Callback] | None = None,
    budget: BudgetConfig | None = None,
    seconds_before: float = 0.0,
    resume_state: dict[str, Any] | None = None,
    evaluation: EvaluationConfig | None = None,
) -> OptimizationContext:
    """A context over the task's own splits with the shared scorer; `seconds_before`: what a resumed run had
    already spent, which its time budget counts."""
    return OptimizationContext(
        train=task.train,
        dev=task.dev,
        initial_prompt=prompt if prompt is not None else task.initial_prompt,
        placement=placement,
        max_reasoning_tokens=max_reasoning_tokens,
        scorer=Scorer(lm, task, placement, max_reasoning_tokens),
        callbacks=callbacks if isinstance(callbacks, CallbackList) else CallbackList(callbacks),
        budget=Budget(budget or BudgetConfig(), seconds_before),
        seed=seed,
        run_dir=Path(run_dir) if run_dir is not None else None,
        resume_state=resume_state,
        usage=lm.usage,
        evaluation=evaluation or EvaluationConfig(),
    )

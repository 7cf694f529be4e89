"""The zero-shot chain-of-thought baseline: the task's initial prompt, unchanged."""

from __future__ import annotations

from typing import Any

from greater.optimizers.base import OptimizationResult


class ZeroShotOptimizer:
    def optimize(self, lm: Any, task: Any, train: list, callbacks: list | None = None, **kwargs: Any):
        prompt = kwargs.get("prompt") or task.initial_prompt
        return OptimizationResult(initial_prompt=prompt, final_prompt=prompt)

"""Zero-shot chain of thought (Kojima et al., 2022): no search, the starting prompt as it is.

The starting prompt is the task's initial prompt (or `prompt=...`); `optimizer=zs_cot` with
`task.initial_prompt="Let's think step by step."` is the classic row of Table 1. It is the one candidate of
the final pick, which scores it on dev like every method's final prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.optimizers.base import Found, OptimizationContext, OptimizationResult, Optimizer, OptimizerConfig


@dataclass
class ZeroShotConfig(OptimizerConfig):
    implementation: ClassVar[str] = "greater.optimizers.zero_shot:ZeroShotOptimizer"

    name: str = "zs_cot"


class ZeroShotOptimizer(Optimizer):
    name = "zs_cot"
    config_class = ZeroShotConfig
    stateless = True  # nothing to checkpoint: the starting prompt is the search's one candidate

    def search(self, lm, task, context: OptimizationContext) -> Found:
        prompt = context.initial_prompt

        def finish(index: int, seconds: float) -> OptimizationResult:
            return OptimizationResult(self.name, initial_prompt=prompt, final_prompt=prompt, seconds=seconds)

        return Found([lm.encode(prompt)], finish)

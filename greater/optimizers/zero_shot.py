"""Zero-shot chain of thought (Kojima et al., 2022): no search, the starting prompt as it is.

The starting prompt is the task's initial prompt (or `prompt=...`); `optimizer=zs_cot` with
`task.initial_prompt="Let's think step by step."` is the classic row of Table 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.optimizers.base import OptimizationContext, OptimizationResult, Optimizer, OptimizerConfig
from greater.optimizers.loop import pick_on_dev


@dataclass
class ZeroShotConfig(OptimizerConfig):
    implementation: ClassVar[str] = "greater.optimizers.zero_shot:ZeroShotOptimizer"

    name: str = "zs_cot"


class ZeroShotOptimizer(Optimizer):
    name = "zs_cot"
    config_class = ZeroShotConfig

    def optimize(self, lm, task, context: OptimizationContext) -> OptimizationResult:
        prompt = context.initial_prompt
        pick = pick_on_dev(context.scorer, [lm.encode(prompt)], context.dev, context.evaluation)  # None without dev
        return OptimizationResult(
            method=self.name,
            initial_prompt=prompt,
            final_prompt=prompt,
            final_dev_acc=pick.dev_score,
            final_dev_metric=pick.metric,
        )

"""The optimizer interface: one config dataclass in; a search that offers final candidates; one result out.

    optimizer = build_optimizer(cfg.optimizer)          # the config dataclass (and a text method's writer)
    result = optimizer.optimize(lm, task, context)      # context: data, prompt, protocol, budget, callbacks

`optimize` is the run package's (greater.lifecycle.loop.optimize): it runs the method's search (the step loop for a
`SteppedOptimizer`, `search` otherwise), makes the one final pick on dev among the candidates the search
offers (greater.evaluation.dev.pick_on_dev) and has the method write its result around the pick.

A method is a config dataclass naming its implementation, the optimizer class, and an entry point in the
`greater.optimizers` group (greater/optimizers/registry.py); a YAML in conf/optimizer/ that extends
`<name>_schema` adds a profile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import MISSING

from greater.config import EvaluationConfig, Resume, setting
from greater.records import StepRecord

if TYPE_CHECKING:
    from greater.callbacks.base import CallbackList
    from greater.engine.rollouts import Scorer
    from greater.models.language_model import LanguageModel
    from greater.tasks.base import Example, Task
    from greater.usage import Ledger


@dataclass
class BudgetConfig:
    """Caps on the compute a method may spend optimizing (null: no cap). A method checks the budget between
    steps and stops cleanly when it is spent, so methods can be compared at equal compute."""

    max_tokens: int | None = setting(None, min=0, resume=Resume.steps)  # tokens generated + forwarded, all roles
    max_seconds: float | None = setting(None, min=0, resume=Resume.steps)
    # (prompt, example) reasonings generated to score prompts
    max_rollouts: int | None = setting(None, min=0, resume=Resume.steps)


@dataclass
class OptimizerConfig:
    """Fields every optimizer has; each method's config dataclass extends it."""

    # used in results, tables and W&B; the registry maps it to the optimizer class
    name: str = setting(MISSING, resume=Resume.fixed)
    budget: BudgetConfig = field(default_factory=BudgetConfig)


@dataclass
class Budget:
    cfg: BudgetConfig
    spent_before: float = 0.0  # seconds a resumed run had already optimized before it stopped
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return self.spent_before + time.perf_counter() - self.started

    def spent(self, lm: LanguageModel) -> str | None:
        """Why the budget is spent (a short reason), or None while there is some left."""
        c = self.cfg
        tokens = lm.total("tokens_generated") + lm.total("tokens_forwarded")
        if c.max_tokens is not None and tokens >= c.max_tokens:
            return f"token budget spent ({int(tokens)} >= {c.max_tokens})"
        if c.max_seconds is not None and self.elapsed() >= c.max_seconds:
            return f"time budget spent ({c.max_seconds:.0f} s)"
        if c.max_rollouts is not None and lm.usage.of("task").rollouts >= c.max_rollouts:
            return f"rollout budget spent ({c.max_rollouts})"
        return None


@dataclass
class OptimizationContext:
    """Everything a method gets besides the model and the task."""

    train: list[Example]
    dev: list[Example]
    initial_prompt: str
    placement: str
    max_reasoning_tokens: int
    scorer: Scorer  # the shared scorer: same chat, extractor and greedy reasoning for every method
    callbacks: CallbackList
    budget: Budget
    seed: int = 0
    run_dir: Path | None = None
    resume_state: dict[str, Any] | None = None  # the method's own state from checkpoint.json, when resuming
    usage: Ledger | None = None  # the run's usage (the model's ledger), saved with every checkpoint
    # how the final pick scores dev (`dev_metric`, and for `parsed` the mode and answer length of the test split)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


@dataclass
class OptimizationResult:
    method: str
    initial_prompt: str
    final_prompt: str
    initial_train_acc: float | None = None
    final_train_acc: float | None = None
    # the final pick's (greater.evaluation.dev.pick_on_dev), set by the run package, never by a method:
    dev_acc: float | None = None  # the final prompt's accuracy on dev; None without a dev split
    dev_metric: str | None = None  # what dev_acc counts (greater.evaluation.metrics)
    history: list[StepRecord] = field(default_factory=list)
    seconds: float = 0.0
    stopped_because: str | None = None  # e.g. the budget that ended the search early
    extra: dict[str, Any] = field(default_factory=dict)  # method-specific summary (e.g. invalid proposals)


@dataclass
class Found:
    """What a search leaves for the final pick: its candidate prompts (token ids), best first by the method's
    own score, and `finish(index, seconds)`, the method's result for the candidate picked (`seconds`: the
    optimization's so far, the pick included). The pick's dev score is added to that result by the caller."""

    prompts: list[list[int]]
    finish: Callable[[int, float], OptimizationResult]


class Optimizer:
    """Base class: holds the config; a method implements `search` (or subclasses `SteppedOptimizer`, whose steps
    the lifecycle loops over). A method may instead define `optimize(lm, task, context)`: its final prompt is
    then the one candidate of the final pick."""

    name: ClassVar[str]
    config_class: ClassVar[type[OptimizerConfig]]
    # True: the search has nothing to save (zs_cot), so a run stopped after it (during the test evaluation)
    # has no checkpoint, and resume= searches again and evaluates only the test examples not yet predicted
    stateless: ClassVar[bool] = False

    def __init__(self, config: OptimizerConfig) -> None:
        self.config = config

    def search(self, lm: LanguageModel, task: Task, context: OptimizationContext) -> Found:
        own = getattr(self, "optimize", None)  # a method written as one `optimize`, as the README's example
        if own is None:
            raise NotImplementedError(f"{type(self).__name__} implements neither search nor optimize")
        result = own(lm, task, context)
        return Found([lm.encode(result.final_prompt)], lambda index, seconds: result)

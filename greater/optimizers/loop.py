"""What a stepped method (GReaTer and the text family) writes; the run package loops over its steps.

    class MyMethod(SteppedOptimizer):
        def init_state(self, lm, task, ctx): ...             # a fresh run's state
        def state_from_json(self, data, lm, task, ctx): ...  # a resumed run's (data: the checkpoint's state)
        def state_to_json(self, state) -> dict: ...
        def step(self, state) -> StepRecord: ...              # one step; time its parts with `self.stages(...)`
        def final_candidates(self, state) -> list: ...        # best first by the method's own score
        def prompt_ids(self, state, candidate) -> list[int]: ...
        def result(self, state, final, ending) -> OptimizationResult: ...

The loop is greater.lifecycle.loop's: it checks the stop signals and the budget before each step, times the step,
adds the model's usage over the step and the stage seconds to its record, keeps the history, reports the
record to the callbacks, checkpoints, and at the end makes the one final pick on dev among the candidates
(greater.evaluation.dev.pick_on_dev), whose score the run package sets on the method's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from greater.optimizers.base import OptimizationContext, OptimizationResult, Optimizer, OptimizerConfig
from greater.records import StepRecord

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel
    from greater.tasks.base import Task

S = TypeVar("S")  # a method's run state
C = TypeVar("C")  # a method's final candidate
StageHook = Callable[[str], AbstractContextManager[Any]]


class Stages:
    """Wall seconds per named stage of the current step: `with optimizer.stages("gradient"): ...`.

    `hook(stage)`, when set, is a context manager entered around each stage, outside its clock: a benchmark
    meters memory and tokens at exactly the engine's stage boundaries by setting it, without patching code."""

    def __init__(self, hook: StageHook | None = None) -> None:
        self.hook = hook
        self.seconds: dict[str, float] = {}

    def reset(self) -> None:
        self.seconds = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        with self.hook(stage) if self.hook is not None else nullcontext():
            started = time.perf_counter()
            try:
                yield
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started

    def rounded(self) -> dict[str, float]:
        return {stage: round(seconds, 3) for stage, seconds in self.seconds.items()}


def usage_delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """The usage (flat, Ledger.flat) that moved between two snapshots, by how much."""
    return {k: round(v - before.get(k, 0), 3) for k, v in after.items() if v != before.get(k, 0)}


@dataclass(frozen=True)
class Ending:
    """How the loop ended, for the method's result."""

    history: list[StepRecord]
    stopped_because: str | None  # the budget that ended the search early, if one did
    seconds: float  # the whole optimization, final pick included


class SteppedOptimizer(Optimizer, Generic[S, C]):
    """An optimizer whose search is a sequence of checkpointed steps; subclasses write the pieces above."""

    def __init__(self, config: OptimizerConfig) -> None:
        super().__init__(config)
        self.stages = Stages()  # reset before every step; set `stages.hook` to meter the stages

    # ---- what a method writes -------------------------------------------------------------------
    def init_state(self, lm: LanguageModel, task: Task, ctx: OptimizationContext) -> S:
        raise NotImplementedError

    def state_from_json(self, data: dict[str, Any], lm: LanguageModel, task: Task, ctx: OptimizationContext) -> S:
        raise NotImplementedError

    def state_to_json(self, state: S) -> dict[str, Any]:
        raise NotImplementedError

    def step(self, state: S) -> StepRecord:
        raise NotImplementedError

    def final_candidates(self, state: S) -> list[C]:
        raise NotImplementedError

    def prompt_ids(self, state: S, candidate: C) -> list[int]:
        raise NotImplementedError

    def result(self, state: S, final: C, ending: Ending) -> OptimizationResult:
        raise NotImplementedError

    def more_steps(self, state: S, done: int) -> bool:
        """Whether to take another step after `done` (the budget is checked apart)."""
        return done < self.config.n_steps  # type: ignore[attr-defined]

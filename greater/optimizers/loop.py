"""The step loop every stepped method runs (GReaTer and the text family), written once.

    class MyMethod(SteppedOptimizer):
        def init_state(self, lm, task, ctx): ...             # a fresh run's state
        def state_from_json(self, data, lm, task, ctx): ...  # a resumed run's (data: the checkpoint's state)
        def state_to_json(self, state) -> dict: ...
        def step(self, state) -> StepRecord: ...              # one step; time its parts with `self.stages(...)`
        def final_candidates(self, state) -> list: ...        # best first by the method's own score
        def prompt_ids(self, state, candidate) -> list[int]: ...
        def result(self, state, final, ending) -> OptimizationResult: ...

`optimize` checks the budget before each step, times the step, adds the model's usage over the step and the
stage seconds to its record, keeps the history, reports the record to the callbacks, checkpoints, and at the
end picks the final prompt among the candidates on dev (`pick_on_dev`, by `evaluation.dev_metric`), so every
method's result carries a dev score, and the metric it counts, whenever the run has a dev split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from greater.optimizers.base import OptimizationContext, OptimizationResult, Optimizer, OptimizerConfig
from greater.records import StepRecord
from greater.run.stop import raise_if_stopped

if TYPE_CHECKING:
    from greater.config import EvaluationConfig
    from greater.engine.rollouts import Scorer
    from greater.models.language_model import LanguageModel
    from greater.tasks.base import Example, Task

log = logging.getLogger(__name__)

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
    """The model's work counters that moved between two snapshots, by how much."""
    return {k: round(v - before.get(k, 0), 3) for k, v in after.items() if v != before.get(k, 0)}


@dataclass(frozen=True)
class Pick:
    index: int  # into the candidates
    dev_score: float | None  # its accuracy on dev by `metric`; None without a dev split
    metric: str | None = None  # what dev_score counts (greater.evaluation.metrics); None without a dev split


def pick_on_dev(
    scorer: Scorer, prompts: Sequence[Sequence[int]], dev: list[Example], evaluation: EvaluationConfig
) -> Pick:
    """The prompt (token ids) with the best dev accuracy by `evaluation.dev_metric` (by default as the test
    split is scored), the earlier one on a tie, as the paper picks; without a dev split, the first (callers
    list their candidates best first by their own score)."""
    # Here, not at the top: composing a config imports the method modules, and the evaluator imports torch.
    from greater.evaluation.dev import dev_accuracies, dev_metric_name

    if not prompts:
        raise ValueError("pick_on_dev needs at least one candidate prompt")
    if not dev:
        return Pick(0, None)
    scores = dev_accuracies(scorer, [list(p) for p in prompts], dev, evaluation)
    best = max(range(len(prompts)), key=lambda i: (scores[i], -i))
    return Pick(best, scores[best], dev_metric_name(evaluation))


@dataclass(frozen=True)
class Ending:
    """How the loop ended, for the method's result."""

    history: list[StepRecord]
    stopped_because: str | None  # the budget that ended the search early, if one did
    seconds: float  # the whole optimization, final pick included
    dev_score: float | None  # the final prompt's accuracy on dev (None without a dev split)
    dev_metric: str | None = None  # what dev_score counts (None without a dev split)


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

    # ---- the loop -------------------------------------------------------------------------------
    def optimize(self, lm: LanguageModel, task: Task, context: OptimizationContext) -> OptimizationResult:
        started = time.perf_counter()
        saved = context.resume_state
        if saved is None:
            history: list[StepRecord] = []
            state = self.init_state(lm, task, context)
        else:
            history = [StepRecord.from_dict(h) for h in saved["history"]]
            state = self.state_from_json(saved, lm, task, context)
        stopped = None
        while self.more_steps(state, len(history)):
            raise_if_stopped()  # the safe point for SIGINT/SIGTERM: the last step's checkpoint is written
            stopped = context.budget.spent(lm)
            if stopped:
                log.info("%s: %s after %d steps", self.name, stopped, len(history))
                break
            history.append(self._timed_step(lm, state))
            # Report first, then checkpoint: a kill in between replays this step on resume rather than lose it.
            context.callbacks.on_step_end(history[-1])
            payload = {"step": len(history), "history": [h.to_dict() for h in history], **self.state_to_json(state)}
            context.checkpoint(self.name, payload)
        candidates = self.final_candidates(state)
        prompts = [self.prompt_ids(state, c) for c in candidates]
        pick = pick_on_dev(context.scorer, prompts, context.dev, context.evaluation)
        ending = Ending(history, stopped, time.perf_counter() - started, pick.dev_score, pick.metric)
        return self.result(state, candidates[pick.index], ending)

    def _timed_step(self, lm: LanguageModel, state: S) -> StepRecord:
        self.stages.reset()
        before, started = dict(lm.counters), time.perf_counter()
        record = self.step(state)
        record.seconds = time.perf_counter() - started
        record.stage_seconds = self.stages.rounded()
        record.model_calls = usage_delta(lm.counters, before)
        return record

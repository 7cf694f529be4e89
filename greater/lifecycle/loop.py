"""The run's side of optimizing: the step loop, and the one final pick on dev, for every method.

    result = optimize(optimizer, lm, task, context)

A `SteppedOptimizer` (GReaTer, the text methods) offers its steps and this loop runs them: before each step
it checks the stop signals (the safe point for SIGINT/SIGTERM) and the budget, it times the step and adds the
model's usage over the step and the stage seconds to its record, keeps the history, reports the record to
the callbacks and checkpoints (`save_step`: the envelope is this module's, the state the method's). Any other
method (GEPA, whose library runs its own loop; zs_cot) runs its `search`. Either way the search ends with
candidate prompts, and `pick_on_dev` (greater.evaluation.dev) picks among them once, here, for every method:
the result's `dev_acc` and `dev_metric` are that pick's.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from greater.evaluation.dev import pick_on_dev
from greater.lifecycle.checkpoint import save_checkpoint
from greater.lifecycle.stop import raise_if_stopped
from greater.optimizers.base import Found, OptimizationContext, OptimizationResult, Optimizer
from greater.optimizers.loop import Ending, SteppedOptimizer, usage_delta
from greater.records import StepRecord

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel
    from greater.tasks.base import Task

log = logging.getLogger(__name__)


def optimize(optimizer: Optimizer, lm: LanguageModel, task: Task, context: OptimizationContext) -> OptimizationResult:
    """Search, then the final pick on dev (by `context.evaluation.dev_metric`; without a dev split, the first
    candidate), then the method's result for the picked candidate, carrying the pick's dev score."""
    started = time.perf_counter()
    if isinstance(optimizer, SteppedOptimizer):
        found = run_steps(optimizer, lm, task, context)
    else:
        found = optimizer.search(lm, task, context)
    pick = pick_on_dev(context.scorer, found.prompts, context.dev, context.evaluation)
    result = found.finish(pick.index, time.perf_counter() - started)
    result.dev_acc, result.dev_metric = pick.dev_acc, pick.dev_metric
    return result


def run_steps(optimizer: SteppedOptimizer, lm: LanguageModel, task: Task, context: OptimizationContext) -> Found:
    """A stepped method's search: fresh or from the checkpoint's state, step by step until the method has no
    more steps, the budget is spent or a stop signal came (raised at the step boundary)."""
    saved = context.resume_state
    if saved is None:
        history: list[StepRecord] = []
        state = optimizer.init_state(lm, task, context)
    else:
        history = [StepRecord.from_dict(h) for h in saved["history"]]
        state = optimizer.state_from_json(saved, lm, task, context)
    stopped = None
    while optimizer.more_steps(state, len(history)):
        raise_if_stopped()  # the safe point for SIGINT/SIGTERM: the last step's checkpoint is written
        stopped = context.budget.spent(lm)
        if stopped:
            log.info("%s: %s after %d steps", optimizer.name, stopped, len(history))
            break
        history.append(_timed_step(optimizer, lm, state))
        # Report first, then checkpoint: a kill in between replays this step on resume rather than lose it.
        context.callbacks.on_step_end(history[-1])
        save_step(context, optimizer.name, history, optimizer.state_to_json(state))
    candidates = optimizer.final_candidates(state)

    def finish(index: int, seconds: float) -> OptimizationResult:
        return optimizer.result(state, candidates[index], Ending(history, stopped, seconds))

    return Found([optimizer.prompt_ids(state, c) for c in candidates], finish)


def save_step(context: OptimizationContext, method: str, history: list[StepRecord], state: dict[str, Any]) -> None:
    """checkpoint.json after a completed step (nothing without a run directory). The envelope is the run's: the
    steps done, the history, the run's usage (flat) and the optimization seconds so far; `state` is the
    method's own (JSON values), read back by its `state_from_json` next to "step" and "history"."""
    if context.run_dir is None:
        return
    payload = {"step": len(history), "history": [h.to_dict() for h in history], **state}
    counters = context.usage.flat() if context.usage is not None else None
    save_checkpoint(context.run_dir, method, payload, counters, context.budget.elapsed(), steps_done=len(history))


def _timed_step(optimizer: SteppedOptimizer, lm: LanguageModel, state: Any) -> StepRecord:
    optimizer.stages.reset()
    before, started = lm.usage.flat(), time.perf_counter()
    record = optimizer.step(state)
    record.seconds = time.perf_counter() - started
    record.stage_seconds = optimizer.stages.rounded()
    record.model_calls = usage_delta(lm.usage.flat(), before)
    return record

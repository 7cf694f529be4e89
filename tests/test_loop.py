"""The shared step loop (greater/optimizers/loop.py): budget, stage timer and its hook, usage per step,
checkpoint and resume, and the final pick on dev that every method's result reports."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from greater.config import DevMetric, EvaluationConfig
from greater.engine.rollouts import Rollout, Scorer
from greater.evaluation.dev import Pick, pick_on_dev
from greater.evaluation.evaluator import evaluate_prompt
from greater.lifecycle.checkpoint import load_checkpoint
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.base import BudgetConfig, OptimizationResult, OptimizerConfig
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.optimizer import GreaterOptimizer
from greater.optimizers.greater.selection import KeepCurrentSelection, ReferenceSelection, selection_strategy
from greater.optimizers.loop import Ending, SteppedOptimizer, usage_delta
from greater.optimizers.registry import build_optimizer, config_classes
from greater.records import StepRecord
from tests.tiny import tiny_language_model


@dataclass
class DropLastConfig(OptimizerConfig):
    name: str = "drop_last"
    n_steps: int = 3


class DropLast(SteppedOptimizer[dict, str]):
    """A toy method: each step drops the prompt's last word and counts one rollout."""

    name = "drop_last"
    config_class = DropLastConfig

    def init_state(self, lm, task, ctx):
        return {"words": ctx.initial_prompt.split(), "lm": lm}

    def state_from_json(self, data, lm, task, ctx):
        return {"words": data["words"], "lm": lm}

    def state_to_json(self, state):
        return {"words": state["words"]}

    def step(self, state):
        with self.stages("drop"):
            state["words"] = state["words"][:-1]
            state["lm"].usage.count("task", "rollouts")
        prompt = " ".join(state["words"])
        return StepRecord(len(state["words"]), self.name, prompt, None, prompt, None)

    def final_candidates(self, state):
        return [" ".join(state["words"]), "Think."]

    def prompt_ids(self, state, candidate):
        return state["lm"].encode(candidate)

    def result(self, state, final, ending: Ending):
        return OptimizationResult(self.name, "", final, history=ending.history,
                                  stopped_because=ending.stopped_because)  # fmt: skip


def context(task, **kwargs):
    lm = tiny_language_model()
    return lm, context_for(lm, task, prompt="a b c d e", max_reasoning_tokens=3, **kwargs)


def test_each_record_gets_its_step_usage_and_stage_seconds(parity_task):
    seen = []

    class Collect:
        def on_step_end(self, record):
            seen.append(record)

    lm, ctx = context(parity_task, callbacks=[Collect()])
    result = optimize(DropLast(DropLastConfig()), lm, parity_task, ctx)
    assert [r.prompt for r in result.history] == ["a b c d", "a b c", "a b"] and seen == result.history
    assert all(r.model_calls == {"task.rollouts": 1} and set(r.stage_seconds) == {"drop"} for r in result.history)
    assert result.final_prompt == "a b" and result.dev_acc is None  # no dev: the first candidate


def test_budget_stops_between_steps_and_says_why(parity_task):
    lm, ctx = context(parity_task, budget=BudgetConfig(max_rollouts=2))
    result = optimize(DropLast(DropLastConfig(n_steps=5)), lm, parity_task, ctx)
    assert len(result.history) == 2 and "rollout budget" in result.stopped_because


def test_checkpoint_holds_the_history_and_the_state_and_resume_continues(parity_task, tmp_path):
    lm, ctx = context(parity_task, run_dir=tmp_path)
    optimize(DropLast(DropLastConfig(n_steps=2)), lm, parity_task, ctx)
    saved = load_checkpoint(tmp_path, "drop_last")
    assert saved["step"] == 2 and len(saved["history"]) == 2 and saved["words"] == ["a", "b", "c"]
    lm, ctx = context(parity_task, run_dir=tmp_path, resume_state=saved)
    resumed = optimize(DropLast(DropLastConfig(n_steps=3)), lm, parity_task, ctx)
    assert [r.prompt for r in resumed.history] == ["a b c d", "a b c", "a b"]


def test_the_stage_hook_wraps_every_stage_of_a_greater_step(parity_task):
    lm, ctx = context(parity_task)
    opt = GreaterOptimizer(GreaterConfig(n_steps=1, topk=4, n_groups=2, group_size=2, min_candidates=2))
    entered = []

    @contextmanager
    def hook(stage):
        entered.append(stage)
        yield

    opt.stages.hook = hook
    (record,) = optimize(opt, lm, parity_task, ctx).history
    assert entered == ["reasoning", "gradient", "proposal", "selection"] == list(record.stage_seconds)


class TableScorer(Scorer):
    """Rollouts from a table: prompt text -> how many of the examples it gets right (the first ones)."""

    def __init__(self, lm, task, right: dict[str, int]):
        super().__init__(lm, task, "after", 3)
        self.right = right

    def rollouts(self, prompts, examples):
        n = [self.right[self.lm.decode(list(p))] for p in prompts]
        return [[Rollout([], 0.0, i < k) for i in range(len(examples))] for k in n]


def test_pick_on_dev_takes_the_best_and_the_earlier_on_a_tie(parity_task):
    lm = tiny_language_model()
    scorer = TableScorer(lm, parity_task, {"one": 1, "two": 2, "also two": 2})
    prompts = [lm.encode(t) for t in ("one", "two", "also two")]
    dev = parity_task.test[:4]
    tf = EvaluationConfig(dev_metric=DevMetric.teacher_forced)  # the table scripts the exact matches
    assert pick_on_dev(scorer, prompts, dev, tf) == Pick(1, 0.5, "exact_match")
    assert pick_on_dev(scorer, prompts, [], tf) == Pick(0, None, None)
    with pytest.raises(ValueError, match="at least one candidate"):
        pick_on_dev(scorer, [], dev, tf)


@pytest.mark.parametrize("method", ["zs_cot", "greater"])
def test_the_result_carries_a_dev_score_whenever_there_is_a_dev_split(method, parity_task):
    parity_task.dev = parity_task.test[:2]
    lm, ctx = context(parity_task)
    cfg = config_classes()[method](**({"n_steps": 0} if method == "greater" else {}))
    result = optimize(build_optimizer(cfg), lm, parity_task, ctx)
    # by default, what the test split would report for the final prompt
    expected = evaluate_prompt(lm, parity_task, parity_task.dev, result.final_prompt, ctx.evaluation, 3).accuracy
    assert result.dev_acc == expected and result.dev_metric == "parsed"


def test_usage_delta_keeps_only_the_counters_that_moved():
    assert usage_delta({"a": 3.0, "b": 1.0, "c": 2.0}, {"a": 1.0, "b": 1.0}) == {"a": 2.0, "c": 2.0}


def test_greater_selection_is_the_configured_strategy():
    assert isinstance(GreaterOptimizer(GreaterConfig()).selection, ReferenceSelection)
    assert isinstance(GreaterOptimizer(GreaterConfig(selection="keep_current")).selection, KeepCurrentSelection)
    with pytest.raises(ValueError, match="optimizer.selection=best: use one of reference, keep_current"):
        selection_strategy("best")

"""GEPA on the gepa package's engine, what our side owns: the adapter's scores, traces and feedback over the
shared scorer (counted and cached), the writer as reflection model, the metric-call budget and ours, and a
killed run that continues like an uninterrupted one (GEPA's state file plus our checkpoint)."""

from __future__ import annotations

import zlib

import pytest

pytest.importorskip("gepa")

from greater.config import DevMetric, EvaluationConfig
from greater.engine.rollouts import Rollout, Scorer
from greater.lifecycle.checkpoint import load_checkpoint
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.base import BudgetConfig
from greater.optimizers.gepa.adapter import COMPONENT, ScorerAdapter, feedback
from greater.optimizers.registry import build_optimizer, config_classes
from greater.writers import WriterError
from greater.writers.local import TaskModelWriter
from tests.test_baselines import comparable, walk_task
from tests.tiny import tiny_language_model


class HashScorer(Scorer):
    """The shared scorer with made-up rollouts: a prompt answers the first round(acc x n) examples right,
    acc a hash of the prompt (the start gets 0.25), so better prompts exist and are found by chance."""

    def __init__(self, lm, task):
        super().__init__(lm, task, "after", 3)
        self.asked = 0

    def accuracy(self, prompt: str) -> float:
        return 0.25 if prompt == walk_task().initial_prompt else (zlib.crc32(prompt.encode()) % 5) / 4

    def rollouts(self, prompts, examples):
        self.asked += sum(len(examples) for _ in prompts)
        self.lm.count("rollouts", len(prompts) * len(examples))
        out = []
        for ids in prompts:
            right = round(self.accuracy(self.lm.decode(list(ids))) * len(examples))
            out.append([Rollout(self.lm.encode(" step one"), 0.0, i < right) for i in range(len(examples))])
        return out


class Reflector:
    """Stands in for `lm.complete`: a new instruction in ``` blocks, chosen by the call's seed (the same on a
    resumed run); `fail_at`: the call that raises, as a kill would stop the run."""

    def __init__(self, lm, fail_at: int | None = None, error: BaseException | None = None):
        self.lm, self.fail_at, self.calls, self.error = lm, fail_at, [], error or KeyboardInterrupt()

    def __call__(self, messages, max_new_tokens, temperature=0.0, n=1, seed=None):
        self.calls.append({"role": self.lm.role, "seed": seed, "message": messages[0]})
        if self.fail_at is not None and len(self.calls) >= self.fail_at:
            raise self.error
        self.lm.count("generations", len(messages) * n)
        return [[f"```\nTrack each move in order, then answer; plan {seed % 1000}.\n```"] * n for _ in messages]


def run_gepa(run_dir=None, resume_state=None, fail_at=None, budget=None, n_dev=2, error=None, **overrides):
    lm, task = tiny_language_model(), walk_task(n_dev=n_dev)
    script = Reflector(lm, fail_at, error)
    lm.complete = script
    ctx = context_for(
        lm,
        task,
        max_reasoning_tokens=3,
        seed=1,
        run_dir=run_dir,
        resume_state=resume_state,
        budget=budget,
        evaluation=EvaluationConfig(dev_metric=DevMetric.teacher_forced),  # HashScorer scripts the exact matches
    )
    ctx.scorer = HashScorer(lm, task)
    settings = {"max_metric_calls": 40, "minibatch_size": 2, "reflection_tokens": 16, **overrides}
    optimizer = build_optimizer(config_classes()["gepa"](**settings))
    return optimize(optimizer, lm, task, ctx), lm, script, ctx


def test_adapter_scores_traces_and_feedback_come_from_the_shared_scorer_cached():
    lm, task = tiny_language_model(), walk_task()
    scorer = Scorer(lm, task, "after", 3)
    config = config_classes()["gepa"](reasoning_chars=5)
    adapter = ScorerAdapter(lm, scorer, TaskModelWriter(lm), config, seed=1)
    batch = task.train[:3]
    out = adapter.evaluate(batch, {COMPONENT: "Think step by step."}, capture_traces=True)
    direct = scorer.rollouts([lm.encode("Think step by step.")], batch)[0]
    assert out.scores == [1.0 if r.correct else 0.0 for r in direct]
    assert [t.gold for t in out.trajectories] == [ex.answer for ex in batch]
    assert all(len(t.reasoning) <= 5 for t in out.trajectories)
    rollouts = lm.usage.of("task").rollouts
    again = adapter.evaluate(batch, {COMPONENT: "Think step by step."})
    assert again.scores == out.scores and again.trajectories is None
    assert lm.usage.of("task").rollouts == rollouts  # the scorer's cache answered
    dataset = adapter.make_reflective_dataset({COMPONENT: "x"}, out, [COMPONENT])
    rows = dataset[COMPONENT]
    assert [r["Inputs"] for r in rows] == [ex.question for ex in batch]
    for row, trace in zip(rows, out.trajectories):
        assert row["Feedback"] == feedback(trace) and trace.gold in row["Feedback"]
        assert row["Feedback"].startswith("Correct" if trace.correct else "Wrong")


def test_gepa_reflects_with_the_writer_within_its_metric_calls():
    result, lm, script, ctx = run_gepa()
    assert result.method == "gepa" and result.extra["metric_calls"] <= 40 + 2  # a last full eval may finish
    # every metric call is one of our rollouts (the rest: the final pick on dev and the train scores)
    assert 40 <= result.extra["metric_calls"] <= ctx.scorer.asked
    assert lm.usage.of("task").rollouts == ctx.scorer.asked
    assert script.calls and all(c["role"] == "optimizer" for c in script.calls)  # the task model reflects
    assert len({c["seed"] for c in script.calls}) == len(script.calls)  # each call its own seed
    assert "Track each move" in script.calls[0]["message"] or "Think step by step." in script.calls[0]["message"]
    assert result.history and [h.step for h in result.history] == list(range(1, len(result.history) + 1))
    assert result.dev_acc is not None and result.extra["selection_split"] == "dev"
    assert result.final_prompt == result.initial_prompt or result.final_prompt.startswith("Track each move")
    assert result.dev_acc >= ctx.scorer.accuracy(result.initial_prompt) - 1e-9
    assert lm.usage.of("optimizer").generations == len(script.calls)


def test_our_budget_stops_gepa_too():
    result, _, _, ctx = run_gepa(budget=BudgetConfig(max_rollouts=6), max_metric_calls=1000)
    assert result.stopped_because and "rollout budget" in result.stopped_because
    assert ctx.scorer.asked < 20


def test_a_killed_gepa_run_continues_like_an_uninterrupted_one(tmp_path):
    settings = {"n_dev": 0, "skip_perfect_score": False, "max_metric_calls": 60}
    straight, _, script_straight, _ = run_gepa(**settings)
    assert len(script_straight.calls) >= 4 and len(straight.history) >= 4
    with pytest.raises(KeyboardInterrupt):
        run_gepa(run_dir=tmp_path, fail_at=3, **settings)
    state = load_checkpoint(tmp_path, "gepa")
    assert state is not None and 1 <= state["step"] < len(straight.history)
    assert (tmp_path / "gepa" / "gepa_state.bin").exists()
    resumed, _, script, _ = run_gepa(run_dir=tmp_path, resume_state=state, **settings)
    assert resumed.final_prompt == straight.final_prompt
    assert resumed.extra == straight.extra
    assert comparable(resumed.history) == comparable(straight.history)
    # the rerun asked only what the stopped run had not: the same seeds, in order, from where it stopped
    assert [c["seed"] for c in script.calls] == [c["seed"] for c in script_straight.calls][-len(script.calls) :]


def test_a_writer_failing_inside_gepa_stops_the_run_with_its_line_and_a_checkpoint(tmp_path):
    with pytest.raises(WriterError, match="refused the key"):
        run_gepa(run_dir=tmp_path, fail_at=2, error=WriterError("optimizer.writer: x refused the key (401)"))
    assert load_checkpoint(tmp_path, "gepa")["step"] >= 1


def test_a_proposal_failing_the_validator_scores_zero_without_a_rollout_and_the_start_is_never_screened():
    lm, task = tiny_language_model(), walk_task()
    scorer = HashScorer(lm, task)
    adapter = ScorerAdapter(lm, scorer, TaskModelWriter(lm), config_classes()["gepa"](), seed=1)
    adapter.start = ""  # a start the validator would refuse
    out = adapter.evaluate(task.train, {COMPONENT: "[insert the instruction here]"}, capture_traces=True)
    assert out.scores == [0.0] * len(task.train) and scorer.asked == 0
    assert adapter.rejected == {"placeholder": 1} and "not run" in out.trajectories[0].reasoning
    adapter.evaluate(task.train, {COMPONENT: ""})
    assert scorer.asked == len(task.train)  # the start is rolled out like any prompt

"""A search stopped after a step and resumed from its checkpoint ends exactly like one never stopped."""

import json

from greater.lifecycle.checkpoint import load_checkpoint
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
from tests.tiny import tiny_language_model


def optimizer(n_steps):
    return GreaterOptimizer(GreaterConfig(n_steps=n_steps, topk=4, n_groups=2, group_size=2, min_candidates=2))


def rounded(value):
    """Floats to 6 significant digits: a resumed run batches some passes differently, which moves float32
    losses in the 8th digit (seen with transformers 5.24); every choice and prompt must still be the same."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def comparable(history):
    return [rounded(h.to_dict() | {"seconds": None, "stage_seconds": None, "model_calls": None}) for h in history]


def run(n_steps, task, run_dir=None, resume_state=None):
    lm = tiny_language_model()
    context = context_for(lm, task, max_reasoning_tokens=4, seed=3, run_dir=run_dir, resume_state=resume_state)
    return optimize(optimizer(n_steps), lm, task, context)


def test_resume_matches_an_uninterrupted_run(parity_task, tmp_path):
    straight = run(5, parity_task)
    run(2, parity_task, run_dir=tmp_path)
    state = load_checkpoint(tmp_path, "greater")
    assert state["step"] == 2 and len(state["history"]) == 2

    resumed = run(5, parity_task, run_dir=tmp_path, resume_state=state)
    assert resumed.final_prompt == straight.final_prompt
    assert comparable(resumed.history) == comparable(straight.history)
    assert load_checkpoint(tmp_path, "greater")["step"] == 5


def test_checkpoint_is_plain_json_written_atomically(parity_task, tmp_path):
    run(1, parity_task, run_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]  # no temporary file left behind
    payload = json.loads((tmp_path / "checkpoint.json").read_text())
    assert payload["method"] == "greater" and payload["state"]["step"] == 1


def test_work_before_a_stop_counts_toward_the_budget_after_resume(parity_task, tmp_path):
    from greater.lifecycle.checkpoint import load_counters
    from greater.optimizers.base import BudgetConfig

    first = tiny_language_model()
    context = context_for(first, parity_task, max_reasoning_tokens=4, seed=3, run_dir=tmp_path)
    optimize(optimizer(2), first, parity_task, context)
    saved = load_counters(tmp_path)
    assert 0 < saved["task.rollouts"] <= first.usage.of("task").rollouts

    # Resumed with a rollout cap the first part already spent: no new step is taken.
    lm = tiny_language_model()
    lm.usage.add(saved)
    cap = BudgetConfig(max_rollouts=int(saved["task.rollouts"]))
    state = load_checkpoint(tmp_path, "greater")
    context = context_for(
        lm, parity_task, max_reasoning_tokens=4, seed=3, run_dir=tmp_path, resume_state=state, budget=cap
    )
    resumed = optimize(optimizer(5), lm, parity_task, context)
    assert len(resumed.history) == 2 and "rollout budget" in resumed.stopped_because


def test_time_before_a_stop_counts_toward_the_time_budget_after_resume(parity_task, tmp_path):
    import time

    from greater.lifecycle.checkpoint import load_seconds
    from greater.optimizers.base import Budget, BudgetConfig

    started = time.perf_counter()
    run(2, parity_task, run_dir=tmp_path)
    saved = load_seconds(tmp_path)
    assert 0 < saved <= time.perf_counter() - started  # the optimization time up to the last checkpoint

    # Resumed with a time cap the first part already spent (as the runner builds it): no new step is taken.
    lm = tiny_language_model()
    state = load_checkpoint(tmp_path, "greater")
    context = context_for(lm, parity_task, max_reasoning_tokens=4, seed=3, resume_state=state)
    context.budget = Budget(BudgetConfig(max_seconds=saved), spent_before=saved)
    resumed = optimize(optimizer(5), lm, parity_task, context)
    assert len(resumed.history) == 2 and "time budget" in resumed.stopped_because
    assert Budget(BudgetConfig(max_seconds=saved)).spent(lm) is None  # without it the clock would restart

"""A search stopped after a step and resumed from its checkpoint ends exactly like one never stopped."""

from greater.optimizers.greater import GreaterOptimizer
from greater.optimizers.search_state import load_state
from greater.testing import tiny_language_model


def optimizer(n_steps):
    return GreaterOptimizer(n_steps=n_steps, topk=4, n_groups=2, group_size=2, min_candidates=2)


def comparable(history):
    return [h.to_dict() | {"seconds": None} for h in history]


def test_resume_matches_an_uninterrupted_run(parity_task, tmp_path):
    kwargs = {"max_reasoning_tokens": 4, "seed": 3}
    straight = optimizer(5).optimize(tiny_language_model(), parity_task, parity_task.train, **kwargs)

    stopped_dir = tmp_path / "stopped"
    stopped_dir.mkdir()
    optimizer(2).optimize(tiny_language_model(), parity_task, parity_task.train, run_dir=stopped_dir, **kwargs)
    state = load_state(stopped_dir)
    assert state.step == 2 and len(state.history) == 2

    resumed = optimizer(5).optimize(
        tiny_language_model(), parity_task, parity_task.train, run_dir=stopped_dir, state=state, **kwargs
    )
    assert resumed.final_prompt == straight.final_prompt
    assert comparable(resumed.history) == comparable(straight.history)
    assert load_state(stopped_dir).step == 5


def test_checkpoint_write_is_atomic(parity_task, tmp_path):
    optimizer(1).optimize(
        tiny_language_model(), parity_task, parity_task.train, run_dir=tmp_path, max_reasoning_tokens=4
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary file left behind

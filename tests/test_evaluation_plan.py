"""The evaluation plan's rows: an initial row exists only for a prompt that was evaluated, or that is the final one."""

from types import SimpleNamespace

from greater.lifecycle.plan import EvaluationPlan


def cfg(evaluate_initial):
    return SimpleNamespace(evaluation=SimpleNamespace(evaluate_initial=evaluate_initial), model="m")


def test_a_skipped_initial_prompt_gets_no_row_and_an_unchanged_one_shares_the_final_row():
    skipped = EvaluationPlan.of(cfg(False), "Let's think.", "If the total.", [], [])
    assert list(skipped.prompts) == ["final"] and not skipped.unchanged
    both = EvaluationPlan.of(cfg(True), "Let's think.", "If the total.", [], [])
    assert list(both.prompts) == ["initial", "final"] and not both.unchanged
    same = EvaluationPlan.of(cfg(False), "Let's think.", "Let's think.", [], [])
    assert list(same.prompts) == ["final"] and same.unchanged

"""The run's ledger (greater.usage): one typed Usage per role, and its flat form, which is what result.json's
compute, the checkpoint and every step's model_calls hold ("<role>.<what>" -> amount, as counted)."""

import json

import pytest

from greater.usage import Ledger, Usage


def test_the_flat_form_holds_what_was_counted_in_the_order_first_counted_with_its_types():
    ledger = Ledger()
    ledger.count("task", "rollouts", 4)
    ledger.count("optimizer", "generations")
    ledger.count("task", "seconds", 0.25)
    ledger.count("task", "tokens_reused", 0)  # counted, though zero: it shows
    ledger.count("task", "rollouts", 2)
    flat = ledger.flat()
    assert list(flat) == ["task.rollouts", "optimizer.generations", "task.seconds", "task.tokens_reused"]
    assert json.dumps(flat) == (
        '{"task.rollouts": 6, "optimizer.generations": 1, "task.seconds": 0.25, "task.tokens_reused": 0}'
    )
    assert ledger.of("task") == Usage(rollouts=6, seconds=0.25) and ledger.of("writer") == Usage()
    assert "writer" not in ledger.roles and not ledger.counted("writer", "cost")


def test_a_checkpoints_counters_read_back_into_the_same_flat_form_and_totals():
    saved = {"task.tokens_generated": 10, "writer.tokens_forwarded": 7, "writer.cost": 0.5, "task.seconds": 1.5}
    ledger = Ledger()
    ledger.add(saved)
    assert ledger.flat() == saved and list(ledger.flat()) == list(saved)
    assert ledger.total("tokens_generated") + ledger.total("tokens_forwarded") == 17
    assert ledger.of("writer").tokens == 7 and ledger.counted("writer", "cost")


def test_an_unknown_kind_of_usage_fails_in_one_line():
    with pytest.raises(ValueError, match="not a kind of usage"):
        Ledger().count("task", "tokens")
    with pytest.raises(ValueError, match="<role>.<what>"):
        Ledger().add({"calls": 3})

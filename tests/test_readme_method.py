"""The README's "Adding a method" example, run as written: one module's code registers a working method."""

import re
from pathlib import Path

import pytest

from greater.optimizers import registry
from greater.optimizers.base import OptimizationContext
from greater.testing import tiny_language_model

README = Path(__file__).resolve().parents[1] / "README.md"


def method_example() -> str:
    text = README.read_text()
    block = re.search(r"<!-- method-example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README lost its method example"
    return block.group(1)


@pytest.fixture
def drop_word():
    namespace: dict = {}
    exec(compile(method_example(), "README:drop_word", "exec"), namespace)
    yield namespace
    registry._OPTIMIZERS.pop("drop_word", None)


def test_readme_method_registers_and_runs(drop_word, parity_task):
    tiny_lm = tiny_language_model(seed=0)  # fresh counters
    optimizer = registry.build_optimizer(drop_word["DropWordConfig"](n_steps=2))
    assert optimizer.name == "drop_word"
    records = []

    class Collect:
        def on_step_end(self, record):
            records.append(record)

    context = OptimizationContext.create(
        tiny_lm, parity_task, prompt="Think very carefully now.", max_reasoning_tokens=4, callbacks=[Collect()]
    )
    result = optimizer.optimize(tiny_lm, parity_task, context)
    assert result.method == "drop_word" and result.initial_prompt == "Think very carefully now."
    # Each step removes at most one word from the best prompt, and the best never gets worse.
    assert len(result.final_prompt.split()) >= 4 - len(records)
    assert [r.step for r in records] == list(range(1, len(records) + 1))
    scores = [r.best_score for r in records]
    assert scores == sorted(scores)
    # Every prompt it scored went through the shared scorer's cache: one rollout per (prompt, example).
    assert tiny_lm.counters["task.rollouts"] == len(context.scorer.cache)

import pytest

from greater.tasks.base import Example, Task
from greater.testing import tiny_language_model


@pytest.fixture(scope="session")
def tiny_lm():
    return tiny_language_model(seed=0)


@pytest.fixture
def parity_task() -> Task:
    examples = [Example(f"Is {n} even?", "Yes" if n % 2 == 0 else "No", id=str(n)) for n in range(10)]
    return Task(
        "parity", train=examples[:6], test=examples[6:], initial_prompt="Think step by step.", answer_type="yes_no"
    )

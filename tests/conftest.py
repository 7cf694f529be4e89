import os

import pytest
import torch

from greater.tasks.base import Example, Task
from tests.reference import assert_same_weights, plain_model
from tests.tiny import tiny_language_model

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs a worker per core: one torch thread each
    os.environ["OMP_NUM_THREADS"] = "1"  # the runs tests start in subprocesses too
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_lm():
    return tiny_language_model(seed=0)


@pytest.fixture(scope="session")
def _tiny_plain(tiny_lm):
    return plain_model(tiny_lm)


@pytest.fixture
def tiny_reference(tiny_lm, _tiny_plain):
    """tiny_lm's independent reference (tests.reference): a plain transformers model with its weights, built
    once a session and checked against them again for every test that reads it."""
    assert_same_weights(_tiny_plain, tiny_lm)
    return _tiny_plain


@pytest.fixture
def parity_task() -> Task:
    examples = [Example(f"Is {n} even?", "Yes" if n % 2 == 0 else "No", id=str(n)) for n in range(10)]
    return Task(
        "parity", train=examples[:6], test=examples[6:], initial_prompt="Think step by step.", answer_type="yes_no"
    )

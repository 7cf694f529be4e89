"""Train / dev / test splits that never overlap and repeat for the same seed."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from greater.config import Split
from greater.tasks.base import Example

SPLITS = tuple(s.value for s in Split)

log = logging.getLogger(__name__)


class TaskError(ValueError):
    """A task cannot be built from its config or data; the message names the problem and the fix."""


@dataclass
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]


def split(
    pool: list[Example],
    test_pool: list[Example] | None,
    n_train: int,
    n_dev: int,
    n_test: int | None,
    how: str,
    seed: int,
) -> Splits:
    """Draw the splits. With a separate `test_pool` (GSM8K, FOLIO) train and dev come from `pool` and test
    from `test_pool`. `how="paper"` keeps file order (first n_train, next n_dev, the rest, capped at n_test);
    "random" shuffles by seed. n_test <= 0 or None takes everything left."""
    _check_sizes(how, n_train, n_dev)
    n_test = n_test if n_test and n_test > 0 else None  # None: all that remain
    order, test_order = list(range(len(pool))), list(range(len(test_pool or [])))
    if how == "random":
        rng = random.Random(seed)  # a private generator: the split never depends on global random state
        rng.shuffle(order)
        rng.shuffle(test_order)
        _check_random_fits(len(pool), None if test_pool is None else len(test_pool), n_train, n_dev, n_test)
    elif n_train >= len(pool):
        raise TaskError(
            f"task.n_train={n_train} leaves none of the {len(pool)} examples for dev and test; lower task.n_train"
        )
    elif n_train + n_dev >= len(pool) and test_pool is None:
        # A small task (BBH penguins_in_a_table has 146) under the paper's 50/100 split: share what is left
        # between dev and test rather than fail a whole sweep.
        shrunk = (len(pool) - n_train) // 2
        log.warning("task.n_dev=%d leaves no test examples of %d; using n_dev=%d", n_dev, len(pool), shrunk)
        n_dev = shrunk
    elif n_train + n_dev > len(pool):
        raise TaskError(
            f"task.n_train={n_train} + n_dev={n_dev} is more than the {len(pool)} examples available "
            "for training; lower task.n_train / task.n_dev"
        )
    train = [pool[i] for i in order[:n_train]]
    dev = [pool[i] for i in order[n_train : n_train + n_dev]]
    if test_pool is None:
        test = [pool[i] for i in order[n_train + n_dev :][:n_test]]
    else:
        test = [test_pool[i] for i in test_order[:n_test]]
    return Splits(train, dev, test)


def question_key(text: str) -> str:
    """A question as overlap is judged: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def overlapping(test: list[Example], *seen: list[Example]) -> list[Example]:
    """The test examples whose question (by `question_key`) also appears in any of the `seen` splits."""
    keys = {question_key(ex.question) for part in seen for ex in part}
    return [ex for ex in test if question_key(ex.question) in keys]


def _check_sizes(how: str, n_train: int, n_dev: int) -> None:
    if how not in SPLITS:
        raise TaskError(f"unknown task.split '{how}'; use random or paper")
    if n_train < 1 or n_dev < 0:  # the optimizer needs at least one training example
        raise TaskError(f"task.n_train must be >= 1 and task.n_dev >= 0 (got {n_train} and {n_dev})")


def _check_random_fits(n_pool: int, n_test_pool: int | None, n_train: int, n_dev: int, n_test: int | None) -> None:
    """A random split must honour every size it is given; asking for more than exists is a config error."""
    if n_test_pool is None:
        wanted = n_train + n_dev + (n_test or 0)
        if wanted > n_pool:
            shown = f" + n_test={n_test}" if n_test else ""
            raise TaskError(
                f"task.n_train={n_train} + n_dev={n_dev}{shown} is more than the {n_pool} examples available; "
                "lower them (task.n_test=0 takes all that remain)"
            )
    elif n_train + n_dev > n_pool:
        raise TaskError(
            f"task.n_train={n_train} + n_dev={n_dev} is more than the {n_pool} training examples available; "
            "lower task.n_train / task.n_dev"
        )
    elif n_test and n_test > n_test_pool:
        raise TaskError(
            f"task.n_test={n_test} is more than the {n_test_pool} test examples available; "
            "lower task.n_test (0 takes them all)"
        )

"""Train / dev / test splits that never overlap and repeat for the same seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

from greater.tasks.base import Example


class TaskError(ValueError):
    """A task cannot be built from its config or data; the message names the problem and the fix."""


@dataclass
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]


def split(
    pool: list[Example], test_pool: list[Example] | None, n_train: int, n_dev: int, n_test: int, how: str, seed: int
) -> Splits:
    """Draw the splits. With a separate `test_pool` (GSM8K, FOLIO) train and dev come from `pool` and test
    from `test_pool`. `how="paper"` keeps file order (first n_train, next n_dev, the rest); "random" shuffles
    by seed. n_test <= 0 takes everything left."""
    if how not in ("random", "paper"):
        raise TaskError(f"unknown task.split '{how}'; use random or paper")
    if n_train < 1 or n_dev < 0:
        raise TaskError(f"task.n_train must be >= 1 and task.n_dev >= 0 (got {n_train} and {n_dev})")
    order = list(range(len(pool)))
    test_order = list(range(len(test_pool))) if test_pool is not None else None
    if how == "random":
        rng = random.Random(seed)
        rng.shuffle(order)
        if test_order is not None:
            rng.shuffle(test_order)
    head = n_train + n_dev + (n_test if test_pool is None and n_test > 0 else 0)
    if head > len(pool):
        raise TaskError(
            f"task.n_train={n_train} + n_dev={n_dev}"
            + (f" + n_test={n_test}" if test_pool is None and n_test > 0 else "")
            + f" is more than the {len(pool)} examples available; lower them"
        )
    train = [pool[i] for i in order[:n_train]]
    dev = [pool[i] for i in order[n_train : n_train + n_dev]]
    if test_pool is None:
        rest = order[n_train + n_dev :]
        test = [pool[i] for i in (rest[:n_test] if n_test > 0 else rest)]
    else:
        assert test_order is not None
        test = [test_pool[i] for i in (test_order[:n_test] if n_test > 0 else test_order)]
    return Splits(train, dev, test)

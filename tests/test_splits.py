"""Splits: disjoint, seeded, sized from config; asking for more than exists is a one-line error."""

import pytest

from greater.tasks import TaskError
from greater.tasks.base import Example
from greater.tasks.splits import split

POOL = [Example(f"q{i}", str(i)) for i in range(30)]
TEST_POOL = [Example(f"t{i}", str(i)) for i in range(7)]


def questions(examples):
    return [e.question for e in examples]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_splits_never_overlap(seed):
    s = split(POOL, None, 5, 5, 10, "random", seed=seed)
    ids = questions(s.train + s.dev + s.test)
    assert (len(s.train), len(s.dev), len(s.test)) == (5, 5, 10)
    assert len(ids) == len(set(ids)) == 20


def test_random_splits_repeat_for_the_same_seed_and_differ_across_seeds():
    a, b, c = (split(POOL, None, 5, 5, 10, "random", seed=s) for s in (1, 1, 2))
    assert (a.train, a.dev, a.test) == (b.train, b.dev, b.test)
    assert a.train != c.train
    assert questions(a.train) != questions(POOL[:5])  # really shuffled, not file order


def test_random_split_does_not_depend_on_global_random_state():
    import random

    random.seed(123)
    a = split(POOL, None, 5, 0, 5, "random", seed=3)
    random.seed(456)
    assert split(POOL, None, 5, 0, 5, "random", seed=3) == a


def test_paper_split_keeps_file_order_and_takes_the_rest():
    s = split(POOL, None, 5, 10, 0, "paper", seed=9)
    assert questions(s.train) == questions(POOL[:5])
    assert questions(s.dev) == questions(POOL[5:15])
    assert questions(s.test) == questions(POOL[15:])
    assert split(POOL, None, 5, 10, 0, "paper", seed=1) == s  # the seed plays no part


@pytest.mark.parametrize("n_test", [0, -1, None])
def test_non_positive_or_null_n_test_means_all_remaining(n_test):
    assert len(split(POOL, None, 5, 5, n_test, "random", seed=0).test) == 20
    assert len(split(POOL, None, 5, 5, n_test, "paper", seed=0).test) == 20


def test_paper_split_caps_the_test_at_n_test_and_at_what_remains():
    assert questions(split(POOL, None, 5, 5, 4, "paper", seed=0).test) == questions(POOL[10:14])
    assert len(split(POOL, None, 5, 5, 1000, "paper", seed=0).test) == 20  # capped, not an error


def test_separate_test_pool_feeds_only_the_test_split():
    s = split(POOL, TEST_POOL, 3, 2, 0, "random", seed=0)
    assert sorted(questions(s.test)) == sorted(questions(TEST_POOL))
    assert not set(questions(s.train + s.dev)) & set(questions(s.test))
    assert set(questions(s.train + s.dev)) <= set(questions(POOL))


def one_line_error(*args, **kwargs) -> str:
    with pytest.raises(TaskError) as info:
        split(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_random_split_larger_than_the_data_names_sizes_and_fix():
    message = one_line_error(POOL, None, 25, 0, 10, "random", seed=0)
    assert "task.n_train=25 + n_dev=0 + n_test=10 is more than the 30 examples available" in message
    assert "lower them" in message


def test_paper_split_with_train_and_dev_larger_than_the_data_is_an_error():
    message = one_line_error(POOL, TEST_POOL, 20, 11, 0, "paper", seed=0)  # GSM8K-like: dev cannot borrow test
    assert "task.n_train=20 + n_dev=11 is more than the 30 examples" in message
    assert "n_train=30 leaves none" in one_line_error(POOL, None, 30, 0, 0, "paper", seed=0)


def test_separate_test_pool_too_small_for_n_test_in_a_random_split():
    assert "task.n_test=8 is more than the 7 test examples" in one_line_error(POOL, TEST_POOL, 3, 0, 8, "random", 0)
    assert "n_train=31" in one_line_error(POOL, TEST_POOL, 31, 0, 0, "random", seed=0)


def test_bad_split_settings():
    assert "unknown task.split 'sorted'; use random or paper" in one_line_error(POOL, None, 1, 0, 0, "sorted", 0)
    assert "task.n_train must be >= 1" in one_line_error(POOL, None, 0, 0, 0, "random", seed=0)


def test_paper_split_of_a_small_task_shares_the_rest_between_dev_and_test(caplog):
    from greater.tasks.base import Example as Ex
    from greater.tasks.splits import split as draw

    pool = [Ex(f"q{i}", "a") for i in range(146)]  # the size of BBH penguins_in_a_table
    parts = draw(pool, None, 50, 100, None, "paper", seed=0)
    assert (len(parts.train), len(parts.dev), len(parts.test)) == (50, 48, 48)
    assert "leaves no test examples" in caplog.text

"""Generation batches decoded side by side (greater/engine/workers.py): the same rollouts as one batch after
another, every worker on one intra-op thread, the process's thread count back afterwards."""

import threading

import pytest
import torch

from greater.engine import workers
from greater.engine.decode import Tail
from greater.engine.workers import decode_workers, side_by_side, spread
from greater.testing import tiny_language_model

TEXTS = ["a", "a much longer input here", "mid size", "Is 4 even? think", "b c", "one two three four five"]


def test_spread_halves_the_largest_batch_until_every_worker_has_one():
    assert spread([[0, 1, 2, 3, 4]], 2) == [[0, 1], [2, 3, 4]]
    assert spread([[0, 1], [2, 3, 4, 5]], 3) == [[0, 1], [2, 3], [4, 5]]
    assert spread([[0], [1]], 4) == [[0], [1]]  # single rows cannot be split
    assert spread([[0, 1, 2]], 1) == [[0, 1, 2]]
    assert sorted(i for b in spread([list(range(9))], 4) for i in b) == list(range(9))  # no row lost or doubled


def test_decode_workers_follows_the_thread_count_on_a_cpu_and_is_one_elsewhere():
    assert decode_workers(0, torch.device("cpu")) == torch.get_num_threads()
    assert decode_workers(3, torch.device("cpu")) == 3
    assert decode_workers(0, torch.device("meta")) == 1
    with pytest.raises(ValueError, match="decode workers=-1"):
        decode_workers(-1, torch.device("cpu"))


def test_side_by_side_keeps_order_runs_one_intra_op_thread_each_and_restores_the_count():
    before = torch.get_num_threads()
    barrier = threading.Barrier(2, timeout=10)  # both items must be in flight at once, or this times out

    def work(x: int) -> tuple[int, int, str]:
        barrier.wait()
        return x * x, torch.get_num_threads(), threading.current_thread().name

    out = list(side_by_side(work, [3, 4], 2))
    assert [v for v, _, _ in out] == [9, 16]
    assert all(n == 1 for _, n, _ in out) and len({name for *_, name in out}) == 2
    assert torch.get_num_threads() == before


def test_side_by_side_with_one_worker_stays_in_the_calling_thread():
    here = threading.current_thread().name
    assert list(side_by_side(lambda x: (x, threading.current_thread().name), [1, 2], 1)) == [(1, here), (2, here)]


@pytest.mark.parametrize("with_drafts", [False, True])
def test_two_workers_give_the_rollouts_and_counts_of_one(monkeypatch, with_drafts):
    lm = tiny_language_model(seed=0, batch_size=8)
    extractor = lm.encode("\nso the answer is")
    inputs = [lm.encode(t) for t in TEXTS]
    tails = [Tail(extractor + lm.encode(a), len(extractor)) for a in ("yes", "no", "7", "maybe", "x", "y")]
    drafts = [lm.encode("a b")[: i % 3] for i in range(len(inputs))] if with_drafts else None
    results, counters = [], []
    for n in (1, 2):
        names: set[str] = set()
        decode = workers.side_by_side

        def spy(fn, items, count, _decode=decode, _names=names):
            def wrapped(item):
                _names.add(threading.current_thread().name)
                return fn(item)

            return _decode(wrapped, items, count)

        monkeypatch.setattr("greater.engine.passes.side_by_side", spy)
        lm.counters.clear()
        passes = lm.passes
        passes = type(passes)(**{**vars(passes), "batching": type(passes.batching)(8, 0, 8, 8, n)})
        decoded = passes.greedy(inputs, 12, drafts, tails, [1] * len(inputs))
        results.append(decoded)
        counters.append(dict(lm.counters))
        assert len(names) == n  # one batch of 6 rows: split in two only with two workers
    one, two = results
    assert one.tokens == two.tokens and one.tail_exact == two.tail_exact and one.accepted == two.accepted
    assert one.tail_losses == pytest.approx(two.tail_losses, abs=1e-6)
    assert {k: v for k, v in counters[0].items() if "seconds" not in k and "calls" not in k} == {
        k: v for k, v in counters[1].items() if "seconds" not in k and "calls" not in k
    }

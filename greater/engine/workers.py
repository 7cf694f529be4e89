"""Generation batches decoded side by side, one Python thread per core, one intra-op thread each.

A greedy decoding step of a small model is many small operations (matrix products of a few rows, each
layer's attention over a short cache): split over two intra-op threads each takes barely less time, so the
second core mostly spins. Two batches decoded at once in two threads, each with one intra-op thread, keep
both cores busy: torch releases the GIL inside its operations, so one thread's work runs while the other
runs Python. Each row is decoded as it is in any batch (the mask and positions make its batch-mates
invisible), so the rollouts are those of one batch after another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def decode_workers(requested: int, device: torch.device) -> int:
    """Threads to decode with: `requested` (0: torch's intra-op thread count) on a CPU; one on a GPU, where a
    batch already fills the device and a second thread would only queue behind the first."""
    if requested < 0:
        raise ValueError(f"decode workers={requested}: use 0 (one per torch CPU thread) or a positive count")
    if device.type != "cpu":
        return 1
    return requested or torch.get_num_threads()


def spread(batches: list[list[int]], workers: int) -> list[list[int]]:
    """The batches, the largest halved (its first half the shorter rows, as batches are sorted) until there
    are at least `workers` of them or none has two rows: every worker gets a batch."""
    out = [list(b) for b in batches]
    while len(out) < workers:
        largest = max(range(len(out)), key=lambda k: len(out[k]), default=None)
        if largest is None or len(out[largest]) < 2:
            break
        rows = out[largest]
        out[largest : largest + 1] = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
    return out


def side_by_side(fn: Callable[[T], R], items: list[T], workers: int) -> Iterator[R]:
    """fn over the items, `workers` at a time, each thread with one intra-op thread; results in item order,
    each yielded as soon as it and those before it are done."""
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    threads = torch.get_num_threads()

    def one_thread(item: T) -> R:
        torch.set_num_threads(1)  # this thread's own OpenMP and MKL count
        with torch.no_grad():  # grad mode is per thread: the caller's does not carry over
            return fn(item)

    try:
        with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="decode") as pool:
            yield from pool.map(one_thread, items)
    finally:
        torch.set_num_threads(threads)  # the process-wide count the workers' calls lowered

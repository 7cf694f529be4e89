"""Out-of-memory backoff for batched passes: halve the batch and retry, down to one item.

On a GPU the batch that fits depends on sequence lengths no config can foresee (a 9B model keeps several MB
of activations per token for a backward pass), so every batched pass runs through `run_with_backoff`
rather than failing a long run on one long batch.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):  # torch.cuda.OutOfMemoryError is this class
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_with_backoff(fn: Callable[[list[T]], R], items: Sequence[T], batch_size: int) -> list[R]:
    """fn over consecutive chunks of `items`, at most `batch_size` each, results in order. A chunk that
    runs out of memory is halved and retried; the smaller size holds for the chunks after it. One item
    that does not fit re-raises the error."""
    results: list[R] = []
    start, size = 0, max(1, batch_size)
    while start < len(items):
        chunk = list(items[start : start + size])
        try:
            results.append(fn(chunk))
        except Exception as error:
            if not is_out_of_memory(error) or len(chunk) == 1:
                raise
            size = max(1, len(chunk) // 2)
            log.warning("out of memory on a batch of %d; retrying in batches of %d", len(chunk), size)
            _free_memory()
            continue
        start += len(chunk)
    return results

"""Batches that plan themselves: out-of-memory back-off that is remembered, and a size read from free memory.

On a GPU the batch that fits depends on sequence lengths no config can foresee (a 9B model keeps several MB
of activations per token for a backward pass), so every batched pass runs through `run_with_backoff`
rather than failing a long run on one long batch. A chunk that runs out of memory is halved and retried.

With a `BatchPlanner` (one per model, kept across calls), each kind of pass ("gradient", "loss", ...) also
remembers what it learned, counted in padded tokens (rows x the longest row) so that it carries over to
batches of other lengths:
- after an out-of-memory on a batch of T tokens, batches of that kind hold at most T / 2 tokens from then on,
  so a run pays one out-of-memory per pass kind, not one per call (an 80 GB card at paper lengths otherwise
  fails three times every step);
- on CUDA, the peak memory a batch took is measured per token, and batches hold at most what the free
  device memory (plus what torch's allocator holds unused) takes at that cost.
The configured batch size stays the ceiling.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


HEADROOM = 0.85  # of the free memory a planned batch may take: fragmentation and other passes' workspace


def free_bytes(device) -> int | None:
    """Memory a new batch can take on `device`: free on the card plus what torch's allocator holds unused.
    None off CUDA (a CPU's memory is not planned)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


@dataclass
class PassMemory:
    """What one kind of pass has learned about the memory its batches take."""

    failed_tokens: int | None = None  # padded tokens of the smallest batch that ran out of memory
    bytes_per_token: float = 0.0  # the most device memory a padded token has taken (measured on CUDA)
    out_of_memory: int = 0  # how many of its batches ran out of memory


@dataclass
class BatchPlanner:
    """A model's memory of its passes, per pass kind, across calls (see the module's docstring)."""

    device: object = "cpu"
    kinds: dict[str, PassMemory] = field(default_factory=dict)

    def of(self, kind: str) -> PassMemory:
        return self.kinds.setdefault(kind, PassMemory())

    def token_budget(self, kind: str) -> int | None:
        """The most padded tokens a batch of this kind should hold; None: no limit known."""
        memory = self.of(kind)
        budgets = []
        if memory.failed_tokens is not None:
            budgets.append(memory.failed_tokens // 2)
        free = free_bytes(self.device)
        if free is not None and memory.bytes_per_token > 0:
            budgets.append(int(free * HEADROOM / memory.bytes_per_token))
        return min(budgets) if budgets else None

    def measure(self, kind: str, tokens: int, peak_bytes: int) -> None:
        memory = self.of(kind)
        memory.bytes_per_token = max(memory.bytes_per_token, peak_bytes / max(1, tokens))

    def failed(self, kind: str, tokens: int) -> None:
        memory = self.of(kind)
        memory.out_of_memory += 1
        memory.failed_tokens = tokens if memory.failed_tokens is None else min(memory.failed_tokens, tokens)


def _chunk_size(lengths: Sequence[int], start: int, ceiling: int, budget: int | None) -> int:
    """How many items from `start` go in the next batch: at most `ceiling`, and (with a budget) as many as keep
    rows x the longest row within it; always at least one."""
    size, longest = 0, 0
    while start + size < len(lengths) and size < ceiling:
        longest_with = max(longest, lengths[start + size])
        if size and budget is not None and (size + 1) * longest_with > budget:
            break
        size, longest = size + 1, longest_with
    return max(1, size)


class _Peak:
    """The peak CUDA memory one batch took above what was allocated before it, when it sets a new peak (the
    peak counter is never reset: a benchmark reads it per stage)."""

    def __init__(self, device) -> None:
        device = torch.device(device)
        self.on = device.type == "cuda" and torch.cuda.is_available()
        self.device = device
        if self.on:
            self.before = torch.cuda.memory_allocated(device)
            self.peak_before = torch.cuda.max_memory_allocated(device)

    def taken(self) -> int | None:
        if not self.on:
            return None
        peak = torch.cuda.max_memory_allocated(self.device)
        return peak - self.before if peak > self.peak_before else None


def run_with_backoff(
    fn: Callable[[list[T]], R],
    items: Sequence[T],
    batch_size: int,
    planner: BatchPlanner | None = None,
    kind: str = "pass",
    length: Callable[[T], int] | None = None,
) -> list[R]:
    """fn over consecutive chunks of `items`, at most `batch_size` each, results in order. A chunk that
    runs out of memory is halved and retried; the smaller size holds for the chunks after it. One item
    that does not fit re-raises the error. With a `planner`, chunks of this `kind` are also sized by what
    earlier calls learned, in padded tokens (`length(item)`: an item's tokens; 1 each when not given)."""
    lengths = [length(item) for item in items] if length is not None else [1] * len(items)
    results: list[R] = []
    start, ceiling, budget = 0, max(1, batch_size), None
    while start < len(items):
        if planner is not None:
            learned = planner.token_budget(kind)
            budget = learned if budget is None else (budget if learned is None else min(budget, learned))
        size = _chunk_size(lengths, start, ceiling, budget)
        chunk = list(items[start : start + size])
        tokens = size * max(lengths[start : start + size])
        peak = _Peak(planner.device) if planner is not None else None
        try:
            results.append(fn(chunk))
        except Exception as error:
            if not is_out_of_memory(error) or len(chunk) == 1:
                raise
            # Halve: from here on (and with a planner, in later calls too) a batch holds half these tokens.
            ceiling, budget = max(1, len(chunk) // 2), tokens // 2
            if planner is not None:
                planner.failed(kind, tokens)
            log.warning("out of memory on a batch of %d; retrying in batches of %d", len(chunk), ceiling)
            _free_memory()
            continue
        if peak is not None and (taken := peak.taken()) is not None:
            planner.measure(kind, tokens, taken)
        start += len(chunk)
    return results

"""Candidate proposal (paper, section 3.2): the tokens the model itself would put at the position.

Each example's top-k next tokens are intersected within random groups of examples and the groups'
intersections are united; k grows until enough candidates survive.
"""

from __future__ import annotations

import random

import torch


def allowed_token_mask(tokenizer, ascii_only: bool = True) -> torch.Tensor:
    """[V] bool: False for special tokens and (optionally) tokens whose text is not printable ASCII."""
    vocab_size = len(tokenizer)
    allowed = torch.ones(vocab_size, dtype=torch.bool)
    for token_id in tokenizer.all_special_ids:
        if token_id < vocab_size:
            allowed[token_id] = False
    if ascii_only:
        for token_id in range(vocab_size):
            text = tokenizer.decode([token_id])
            if not text or not (text.isascii() and text.isprintable()):
                allowed[token_id] = False
    return allowed


def sample_groups(n_examples: int, group_size: int, n_groups: int, rng: random.Random) -> list[list[int]]:
    """q random groups of example indices (each without repeats; all examples when there are few)."""
    size = min(group_size, n_examples)
    return [sorted(rng.sample(range(n_examples), size)) for _ in range(n_groups)]


def intersect_and_unite(topk_ids: torch.Tensor, groups: list[list[int]]) -> list[int]:
    """topk_ids: [N, k]. Union over groups of the intersection of the group members' top-k sets."""
    sets = [set(row) for row in topk_ids.tolist()]
    union: set[int] = set()
    for group in groups:
        union |= set.intersection(*(sets[i] for i in group))
    return sorted(union)


def propose_candidates(
    next_token_logits: torch.Tensor,
    groups: list[list[int]],
    allowed: torch.Tensor,
    topk: int,
    growth: int,
    min_candidates: int,
    max_topk: int,
) -> tuple[list[int], int]:
    """next_token_logits: [N, V] at the position, one row per example. Returns (candidates, k used)."""
    logits = next_token_logits.masked_fill(~allowed.to(next_token_logits.device), float("-inf"))
    k = topk
    while True:
        top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices  # [N, k]
        candidates = intersect_and_unite(top, groups)
        if len(candidates) >= min_candidates or k >= max_topk:
            return candidates, k
        k += growth

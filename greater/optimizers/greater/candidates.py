"""Candidate proposal (paper, section 3.2): the tokens the model itself would put at the position.

Each example's top-k next tokens are intersected within random groups of examples and the groups'
intersections are united; k grows until enough candidates survive.
"""

from __future__ import annotations

import random

import torch

from greater.optimizers.greater.config import TokenFilter

TOKEN_FILTERS = tuple(f.value for f in TokenFilter)


def reference_text_ok(text: str) -> bool:
    """The reference's test (psunlpgroup/GreaTer llm_opt/base/attack_manager.py:86-147, aggressive=False):
    printable ASCII made only of letters and spaces, or exactly ".", "," or " ". So digits, quotes ("'s"),
    hyphens and " ." are out, a bare "." and "," are in."""
    if not (text.isascii() and text.isprintable()):
        return False
    return text in (".", ",", " ") or all(ch.isalpha() or ch == " " for ch in text)


def ascii_text_ok(text: str) -> bool:
    """Our wider variant: any printable ASCII (digits and punctuation included)."""
    return text.isascii() and text.isprintable()


def allowed_token_mask(tokenizer, token_filter: str = "reference") -> torch.Tensor:
    """[V] bool: which tokens may be proposed. Special and added tokens never are (the reference bans
    bos/eos/pad/unk, AM:138-145; we also ban every added token, e.g. SmolLM2's `<repo_name>`, which
    `all_special_ids` does not list). Empty decodings are banned too."""
    if token_filter not in TOKEN_FILTERS:
        raise ValueError(f"unknown optimizer.token_filter '{token_filter}'; use one of {', '.join(TOKEN_FILTERS)}")
    text_ok = reference_text_ok if token_filter == "reference" else ascii_text_ok
    vocab_size = len(tokenizer)
    allowed = torch.tensor([bool(text) and text_ok(text) for text in _decoded(tokenizer, vocab_size)])
    banned = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    allowed[[i for i in banned if i < vocab_size]] = False
    return allowed


def fit_to_vocabulary(allowed: torch.Tensor, n_logits: int) -> torch.Tensor:
    """`allowed` sized to the model's output layer: a model may have more rows than its tokenizer has tokens
    (Qwen2.5-7B: 152,064 vs 151,665; a random-weight model on a borrowed tokenizer), and ids the tokenizer
    cannot decode are never proposed."""
    if allowed.shape[0] >= n_logits:
        return allowed[:n_logits]
    return torch.cat([allowed, allowed.new_zeros(n_logits - allowed.shape[0])])


def _decoded(tokenizer, vocab_size: int) -> list[str]:
    return [tokenizer.decode([token_id]) for token_id in range(vocab_size)]


def ban_previous_token(allowed: torch.Tensor, prompt_ids: list[int], position: int) -> torch.Tensor:
    """A copy of `allowed` without the token before `position` (at 0, Python's [-1]: the prompt's last
    token), as the reference does (greater_opt.py:279 `logits[control_toks[pos-1]] = -inf`): no word twice
    in a row."""
    out = allowed.clone()
    if prompt_ids:
        out[prompt_ids[position - 1]] = False
    return out


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
    allowed = fit_to_vocabulary(allowed, next_token_logits.shape[-1])
    logits = next_token_logits.masked_fill(~allowed.to(next_token_logits.device), float("-inf"))
    k = topk
    while True:
        top = logits.topk(min(k, logits.shape[-1]), dim=-1).indices  # [N, k]
        candidates = intersect_and_unite(top, groups)
        if len(candidates) >= min_candidates or k >= max_topk:
            return candidates, k
        k += growth

"""Greedy decoding with a key-value cache, batched, that can start from a draft of each continuation.

A draft is a guess at the greedy continuation (e.g. the reasoning the same question got with a prompt that
differs in one token). The input and its draft go through the model in one forward pass; the longest prefix
of the draft on which the model's argmax agrees is accepted, the argmax at the first disagreement is the
next token, and decoding goes on one token at a time from there. Rejected draft tokens stay in the cache but
are masked out of attention, and every token gets the position it would have without them, so the result is
plain greedy decoding token for token (up to float rounding: a draft's logits come from one pass over many
tokens instead of one step at a time, which can flip an argmax only on an exact near-tie).

Rows that finish (a stop token, or the token limit) leave the batch at the next check, which happens every
`check_every` steps: between checks nothing is read back from the device, so a GPU is never stalled per token.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass
class Decoded:
    tokens: list[list[int]]  # new tokens per row, stop token and anything after it dropped
    accepted: list[int]  # draft tokens accepted per row
    decode_steps: int  # one-token forward passes after the first (the work a draft saves)


def _cache_keyword(model) -> str:
    # transformers renamed `past_key_values` to `cache` during 5.x; use whichever this version takes.
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


def _accept(draft: list[int], predicted: list[int]) -> int:
    """Length of the longest draft prefix that greedy decoding reproduces."""
    k = 0
    while k < len(draft) and predicted[k] == draft[k]:
        k += 1
    return k


def _finished(tokens: list[int], stop_ids: set[int], limit: int) -> bool:
    return len(tokens) >= limit or any(t in stop_ids for t in tokens)


def _trim(tokens: list[int], stop_ids: set[int], limit: int) -> list[int]:
    for n, token in enumerate(tokens[:limit]):
        if token in stop_ids:
            return tokens[:n]
    return tokens[:limit]


@torch.no_grad()
def greedy_decode(
    model,
    inputs: list[list[int]],
    max_new_tokens: int,
    stop_ids: set[int],
    pad_id: int,
    drafts: list[list[int]] | None = None,
    check_every: int = 8,
) -> Decoded:
    """Greedy continuations of `inputs` (one batch), each verified against and extended from its draft."""
    drafts = [list(d[:max_new_tokens]) for d in drafts] if drafts else [[] for _ in inputs]
    device = model.get_input_embeddings().weight.device
    ids, mask = _left_pad([x + d for x, d in zip(inputs, drafts)], pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    width = max(len(d) for d in drafts)  # the last width + 1 positions predict the draft and the token after
    cache = DynamicCache(config=model.config)
    with_cache = {_cache_keyword(model): cache, "use_cache": True}
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=width + 1, **with_cache)
    predicted = out.logits.argmax(-1).tolist()  # [B, width + 1]; the one read-back of the prefill
    generated, accepted = [], []
    next_pos = []
    for row, (x, d) in enumerate(zip(inputs, drafts)):
        guess = predicted[row][width - len(d) :]
        k = _accept(d, guess)
        generated.append(d[:k] + [guess[k]])
        accepted.append(k)
        mask[row, mask.shape[1] - len(d) + k :] = 0  # rejected draft tokens: in the cache, never attended to
        next_pos.append(len(x) + k)
    result = [[] for _ in inputs]
    live = list(range(len(inputs)))  # original row of each batch row
    last = torch.tensor([g[-1] for g in generated], device=device)
    pos = torch.tensor(next_pos, device=device)
    pending: list[torch.Tensor] = []
    steps = 0
    while True:
        if not pending or len(pending) == check_every:
            # Check point: read the steps since the last check back and drop finished rows.
            new = torch.stack(pending, 1).tolist() if pending else [[] for _ in live]
            pending = []
            keep = []
            for b, row in enumerate(live):
                generated[row] += new[b]
                if not _finished(generated[row], stop_ids, max_new_tokens):
                    keep.append(b)
            if not keep:
                break
            if len(keep) < len(live):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, last, pos = mask[index], last[index], pos[index]
                live = [live[b] for b in keep]
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], 1)
        out = model(input_ids=last[:, None], attention_mask=mask, position_ids=pos[:, None], **with_cache)
        last = out.logits[:, -1].argmax(-1)  # stays on the device: no sync per token
        pos = pos + 1
        pending.append(last)
        steps += 1
    for row in range(len(inputs)):
        result[row] = _trim(generated[row], stop_ids, max_new_tokens)
    return Decoded(result, accepted, steps)

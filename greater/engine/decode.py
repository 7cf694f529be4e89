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

A row may also carry a tail (for the scorer: the extractor and the gold answer). When the row finishes, its
key-value cache, with anything generated after the stop masked out, takes the tail in one short forward pass,
and the cross-entropy of the tail's scored tokens is returned: the question, prompt and reasoning are never
run through the model a second time to read the answer's loss.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from greater.engine.losses import span_cross_entropy
from greater.engine.prefix_store import PrefixStore


@dataclass
class Decoded:
    tokens: list[list[int]]  # new tokens per row, stop token and anything after it dropped
    accepted: list[int]  # draft tokens accepted per row
    decode_steps: int  # one-token forward passes after the first (the work a draft saves)
    tail_losses: list[float] | None = None  # per row: mean cross-entropy of its tail's scored tokens
    tail_exact: list[bool] | None = None  # per row: greedy decoding would emit exactly those tokens
    tail_tokens: int = 0  # tokens forwarded to score the tails


@dataclass(frozen=True)
class Tail:
    """Tokens to read after a row's continuation; tokens[score_from:] are scored (score_from >= 1, so every
    scored token is predicted by a tail token, never by the continuation)."""

    tokens: list[int]
    score_from: int


def cache_keyword(model) -> str:
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
    tails: list[Tail] | None = None,
    prefix_lengths: list[int] | None = None,
    store: PrefixStore | None = None,
) -> Decoded:
    """Greedy continuations of `inputs` (one batch), each verified against and extended from its draft;
    with `tails`, each row's tail is scored from its cache as the row finishes; with `prefix_lengths`, rows
    whose first prefix_lengths[r] tokens are the same share one pass over them (see `_prefill`), and prefixes
    held in `store` are read from it."""
    drafts = [list(d[:max_new_tokens]) for d in drafts] if drafts else [[] for _ in inputs]
    device = model.get_input_embeddings().weight.device
    width = max(len(d) for d in drafts)  # the last width + 1 positions predict the draft and the token after
    cache, mask, out = _prefill(model, inputs, drafts, pad_id, width + 1, prefix_lengths, store)
    with_cache = {cache_keyword(model): cache, "use_cache": True}
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
    steps, tail_tokens = 0, 0
    scores: dict[int, tuple[float, bool]] = {}  # row -> (tail loss, tail exact)
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
            if tails is not None and len(keep) < len(live):
                done = [b for b in range(len(live)) if b not in set(keep)]
                finished = _Finished([live[b] for b in done], inputs, generated, tails, stop_ids, max_new_tokens)
                index = torch.tensor(done, device=device)
                tail_tokens += _score_tails(model, cache, index, mask, finished, scores)
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
    if tails is None:
        return Decoded(result, accepted, steps)
    losses, exact = zip(*(scores[row] for row in range(len(inputs))))
    return Decoded(result, accepted, steps, list(losses), list(exact), tail_tokens)


def start_cache(model, rows: list[list[int]], pad_id: int, keep: int, store: PrefixStore | None = None):
    """One left-padded forward pass over `rows` into a new cache: (cache, attention mask, output with the last
    `keep` logits of each row). Rows that start with a prefix held in `store` read its cache instead of
    running it (the last `keep` tokens are always run, since their logits are wanted)."""
    device = model.get_input_embeddings().weight.device
    matches = [store.match(r, len(r) - keep) for r in rows] if store is not None and store.entries else None
    gathered = store.gather(matches, device) if matches else None
    if gathered is None:
        empty = torch.zeros(len(rows), 0, dtype=torch.long, device=device)
        return _extend(model, DynamicCache(config=model.config), empty, rows, pad_id, keep)
    layers, mask = gathered
    cache = DynamicCache(ddp_cache_data=layers, config=model.config)
    return _extend(model, cache, mask, [r[m.length :] for r, m in zip(rows, matches)], pad_id, keep)


def _extend(model, cache: DynamicCache, mask: torch.Tensor, rows: list[list[int]], pad_id: int, keep: int):
    """Run left-padded `rows` after `cache` (mask [B, W]: the cache's attention mask): (cache, the extended
    mask, output with the last `keep` logits). Padding may then sit in two places ([pad | cached | pad | new]);
    the mask and explicit positions make it invisible, so each row computes what it would alone."""
    ids, rows_mask = _left_pad(rows, pad_id, mask.device)
    mask = torch.cat([mask, rows_mask], 1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, mask.shape[1] - ids.shape[1] :]
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        logits_to_keep=keep,
        **{cache_keyword(model): cache, "use_cache": True},
    )
    return cache, mask, out


def _prefill(model, inputs, drafts, pad_id: int, keep: int, prefix_lengths: list[int] | None, store=None):
    """The first pass over every row's input and draft: (cache, attention mask, output with the last `keep`
    logits). Rows that start with the same prefix (one question under several prompts) share it: the distinct
    prefixes go through the model once, their cache is copied to each row, and the rest of each row follows
    in a second pass."""
    device = model.get_input_embeddings().weight.device
    rows = [x + d for x, d in zip(inputs, drafts)]
    lengths = [min(n, len(x) - 1) for n, x in zip(prefix_lengths or [0] * len(inputs), inputs)]
    prefixes = list(dict.fromkeys(tuple(x[:n]) for x, n in zip(inputs, lengths) if n > 0))
    if len(prefixes) == 0 or len(prefixes) == len(inputs) or min(lengths) == 0:  # nothing shared
        return start_cache(model, rows, pad_id, keep, store)
    cache, prefix_mask, _ = start_cache(model, [list(p) for p in prefixes], pad_id, 1, store)
    slot = {p: k for k, p in enumerate(prefixes)}
    index = torch.tensor([slot[tuple(x[:n])] for x, n in zip(inputs, lengths)], device=device)
    cache = _select_rows(cache, index, model.config)
    return _extend(model, cache, prefix_mask[index], [r[n:] for r, n in zip(rows, lengths)], pad_id, keep)


@dataclass
class _Finished:
    """Rows that just finished, with what their tails need: [original row], their inputs and generations."""

    rows: list[int]
    inputs: list[list[int]]
    generated: list[list[int]]
    tails: list[Tail]
    stop_ids: set[int]
    limit: int


def _select_rows(cache: DynamicCache, index: torch.Tensor, config) -> DynamicCache:
    """A new cache holding only the rows `index` of `cache` (the original is left as it is)."""
    return DynamicCache(
        ddp_cache_data=[(layer.keys[index], layer.values[index]) for layer in cache.layers], config=config
    )


def _score_tails(
    model, cache: DynamicCache, index: torch.Tensor, mask: torch.Tensor, done: _Finished, scores: dict
) -> int:
    """Forward the tails of the finished batch rows `index` from their cache (mask: the batch's) and put
    (loss, exact) per original row into `scores`. Returns the tokens forwarded.

    The cache holds each row's input and every generated token but the last (it is fed at the next step);
    the reasoning ends at the first stop token. So tokens fed after the reasoning are masked out, and a last
    reasoning token not yet fed goes in front of the tail; positions go on from the reasoning's end."""
    device = mask.device
    mask = mask[index].clone()
    rows, starts, scored_from = [], [], []
    for b, row in enumerate(done.rows):
        reasoning = _trim(done.generated[row], done.stop_ids, done.limit)
        fed = min(len(done.generated[row]) - 1, len(reasoning))
        valid = mask[b] == 1
        mask[b, valid & (mask[b].cumsum(0) > len(done.inputs[row]) + fed)] = 0
        tail = done.tails[row]
        rows.append(reasoning[fed:] + tail.tokens)
        starts.append(len(done.inputs[row]) + fed)
        scored_from.append(len(reasoning) - fed + tail.score_from)
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows], device=device)
    tail_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    positions = torch.tensor(starts, device=device)[:, None] + torch.arange(width, device=device)
    needed = sorted({t for r, s in zip(rows, scored_from) for t in range(s - 1, len(r) - 1)})
    column = {t: c for c, t in enumerate(needed)}
    sub = _select_rows(cache, index, model.config)
    out = model(
        input_ids=ids,
        attention_mask=torch.cat([mask, tail_mask], 1),
        position_ids=positions,
        logits_to_keep=torch.tensor(needed, device=device),
        **{cache_keyword(model): sub, "use_cache": True},
    )
    logits = out.logits.float()
    for b, (row, r, s) in enumerate(zip(done.rows, rows, scored_from)):
        row_logits = logits[b, [column[t] for t in range(s - 1, len(r) - 1)]]
        target = torch.tensor(r[s:], device=device)
        scores[row] = (float(span_cross_entropy(row_logits, target)), bool((row_logits.argmax(-1) == target).all()))
    return int(tail_mask.sum())


@torch.no_grad()
def continuation_losses(
    model, prefixes: list[list[int]], rows: list[tuple[int, list[int]]], pad_id: int, store: PrefixStore | None = None
) -> list[float]:
    """Mean cross-entropy of each row's tokens right after its prefix: rows[r] = (prefix index, tokens), one batch.

    Many rows share a prefix (one question, many prompts): each prefix the rows use goes through the model
    once, and its cache and last logits (which predict a row's first token) serve every row that starts with it."""
    device = model.get_input_embeddings().weight.device
    used = sorted({p for p, _ in rows})
    cache, mask, first = start_cache(model, [prefixes[p] for p in used], pad_id, 1, store)
    first = first.logits[:, -1].float()  # [P, V]: each prefix's prediction of a row's first token
    slot = {p: k for k, p in enumerate(used)}
    index = torch.tensor([slot[p] for p, _ in rows], device=device)
    width = max(len(t) for _, t in rows)
    tokens = torch.tensor([t + [pad_id] * (width - len(t)) for _, t in rows], device=device)
    row_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for _, t in rows], device=device)
    starts = torch.tensor([len(prefixes[p]) for p, _ in rows], device=device)
    out = model(
        input_ids=tokens,
        attention_mask=torch.cat([mask[index], row_mask], 1),
        position_ids=starts[:, None] + torch.arange(width, device=device),
        **{cache_keyword(model): _select_rows(cache, index, model.config), "use_cache": True},
    )
    logits = out.logits.float()
    losses = []
    for k, (p, t) in enumerate(rows):
        predicted = torch.cat([first[slot[p]][None], logits[k, : len(t) - 1]])  # row i predicts t[i]
        losses.append(float(span_cross_entropy(predicted, torch.tensor(t, device=device))))
    return losses

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

A row may also carry an end: tokens forced after its continuation (the extractor), fed from the row's own
key-value cache, with anything generated after the stop masked out, in one short forward pass as the row
finishes. The end either scores them (a `Tail`: for the scorer, the extractor and the gold answer, whose
cross-entropy is returned) or keeps decoding greedily after them (an `Answer`: for the evaluator, the model's
own answer). Either way the question, prompt and reasoning are never run through the model a second time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from greater.engine.kv import Engine, Prefix, keep_rows, select
from greater.engine.losses import span_cross_entropy
from greater.engine.prefix_store import PrefixStore


@dataclass
class Decoded:
    tokens: list[list[int]]  # new tokens per row, stop token and anything after it dropped
    accepted: list[int]  # draft tokens accepted per row
    decode_steps: int  # one-token forward passes after the first (the work a draft saves)
    tail_losses: list[float] | None = None  # per row: mean cross-entropy of its tail's scored tokens
    tail_exact: list[bool] | None = None  # per row: greedy decoding would emit exactly those tokens
    tail_tokens: int = 0  # tokens forwarded for the ends (tails or answers' forced tokens)
    answers: list[list[int]] | None = None  # per row, with `Answer` ends: the tokens decoded after the forced ones

    @staticmethod
    def concat(parts: list[Decoded]) -> Decoded:
        """The rows of several decoded batches, in order."""
        if not parts:
            return Decoded([], [], 0, [], [], 0, [])

        def rows(name: str) -> list | None:
            return None if getattr(parts[0], name) is None else [x for p in parts for x in getattr(p, name)]

        steps, tokens = sum(p.decode_steps for p in parts), sum(p.tail_tokens for p in parts)
        return Decoded(
            rows("tokens"), rows("accepted"), steps, rows("tail_losses"), rows("tail_exact"), tokens, rows("answers")
        )

    def take(self, order: list[int]) -> Decoded:
        """The rows `order` (row order[i] becomes row i)."""

        def rows(values: list | None) -> list | None:
            return None if values is None else [values[k] for k in order]

        return Decoded(
            rows(self.tokens),
            rows(self.accepted),
            self.decode_steps,
            rows(self.tail_losses),
            rows(self.tail_exact),
            self.tail_tokens,
            rows(self.answers),
        )


@dataclass(frozen=True)
class Tail:
    """Tokens to read after a row's continuation; tokens[score_from:] are scored (score_from >= 1, so every
    scored token is predicted by a tail token, never by the continuation)."""

    tokens: list[int]
    score_from: int


@dataclass(frozen=True)
class Answer:
    """Tokens to feed after a row's continuation (e.g. the extractor), then up to `max_new_tokens` greedy
    tokens after them (the answer), stopping at a stop token like the continuation."""

    tokens: list[int]
    max_new_tokens: int

    def __post_init__(self) -> None:
        if not self.tokens:
            raise ValueError("Answer needs at least one forced token (e.g. the extractor) to decode after")


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
    tails: list[Tail] | list[Answer] | None = None,
    prefix_lengths: list[int] | None = None,
    store: PrefixStore | None = None,
) -> Decoded:
    """Greedy continuations of `inputs` (one batch), each verified against and extended from its draft;
    with `tails`, each row's end (all `Tail`s: scored; all `Answer`s: decoded) is run from its cache as the
    row finishes; with `prefix_lengths`, rows whose first prefix_lengths[r] tokens are the same share one
    pass over them (see `_prefill`), and prefixes held in `store` are read from it."""
    if tails is not None and len({type(t) for t in tails}) > 1:
        raise ValueError("greedy_decode: tails mix Tail and Answer ends; pass one kind per call")
    engine = Engine(model, pad_id, store)
    drafts = [list(d[:max_new_tokens]) for d in drafts] if drafts else [[] for _ in inputs]
    ends_width = max((len(t.tokens) + getattr(t, "max_new_tokens", 0) for t in tails), default=0) if tails else 0
    # The widest a row can get in the batch's cache: a store or shared prefix can pad as wide as the row itself.
    span = 2 * max(len(x) + len(d) for x, d in zip(inputs, drafts)) + max_new_tokens + check_every + ends_width
    gapless = engine.gaps_change_window(span)
    if gapless:  # a sliding window could be reached: no masked slot inside any row (see greater.engine.kv)
        engine = Engine(model, pad_id, None)  # the store's and a shared prefix's middle padding
        drafts = [[] for _ in inputs]  # rejected draft tokens
        prefix_lengths = None
        check_every = 1 if tails else check_every  # tokens fed after a stop, before the row's end is read
    width = max(len(d) for d in drafts)  # the last width + 1 positions predict the draft and the token after
    prefix, logits = _prefill(engine, inputs, drafts, width + 1, prefix_lengths)
    predicted = logits.argmax(-1).tolist()  # [B, width + 1]; the one read-back of the prefill
    generated, accepted, next_pos = [], [], []
    for row, (x, d) in enumerate(zip(inputs, drafts)):
        guess = predicted[row][width - len(d) :]
        k = _accept(d, guess)
        generated.append(d[:k] + [guess[k]])
        accepted.append(k)
        prefix.mask[row, prefix.mask.shape[1] - len(d) + k :] = 0  # rejected draft tokens: cached, never attended to
        next_pos.append(len(x) + k)
    ends = _Ends(engine, inputs, generated, tails, stop_ids, max_new_tokens, check_every, gapless) if tails else None
    last = torch.tensor([g[-1] for g in generated], device=engine.device)
    pos = torch.tensor(next_pos, device=engine.device)
    limits = [max_new_tokens] * len(inputs)
    steps = _decode(engine, prefix, list(range(len(inputs))), generated, last, pos, stop_ids, limits, check_every, ends)
    result = [_trim(g, stop_ids, max_new_tokens) for g in generated]
    if ends is None:
        return Decoded(result, accepted, steps)
    if isinstance(tails[0], Answer):
        return Decoded(
            result, accepted, steps, tail_tokens=ends.tokens, answers=[ends.answers[r] for r in range(len(inputs))]
        )
    losses, exact = zip(*(ends.scores[row] for row in range(len(inputs))))
    return Decoded(result, accepted, steps, list(losses), list(exact), ends.tokens)


def _decode(engine: Engine, prefix: Prefix, live, generated, last, pos, stop_ids, limits, check_every, on_finish=None):
    """Greedy steps over `prefix` for its batch rows, live[b] being the original row of batch row b. Each row's
    newest token last[b] is in generated[live[b]] but not yet fed; it goes in at position pos[b]. A row stops at
    a stop token or at limits[row] tokens; on_finish(prefix, batch rows, original rows), when given, sees the
    cache of rows that just finished before they leave it. Returns the steps taken."""
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
                if not _finished(generated[row], stop_ids, limits[row]):
                    keep.append(b)
            if on_finish is not None and len(keep) < len(live):
                kept = set(keep)
                done = [b for b in range(len(live)) if b not in kept]
                on_finish(prefix, done, [live[b] for b in done])
            if not keep:
                return steps
            if len(keep) < len(live):
                index = torch.tensor(keep)  # CPU: legal for the cache and tokens wherever they live
                keep_rows(prefix, index)
                last, pos = last[index], pos[index]
                live = [live[b] for b in keep]
        last = engine.step(prefix, last, pos).argmax(-1)  # stays on the device: no sync per token
        pos = pos + 1
        pending.append(last)
        steps += 1


def _prefill(engine: Engine, inputs, drafts, keep: int, prefix_lengths: list[int] | None):
    """The first pass over every row's input and draft: (prefix, the last `keep` logits of each row). Rows that
    start with the same prefix (one question under several prompts) share it: the distinct prefixes go through
    the model once, their cache is copied to each row, and the rest of each row follows in a second pass."""
    rows = [x + d for x, d in zip(inputs, drafts)]
    lengths = [min(n, len(x) - 1) for n, x in zip(prefix_lengths or [0] * len(inputs), inputs)]
    prefixes = list(dict.fromkeys(tuple(x[:n]) for x, n in zip(inputs, lengths) if n > 0))
    if len(prefixes) == 0 or len(prefixes) == len(inputs) or min(lengths) == 0:  # nothing shared
        return engine.prefill(rows, keep)
    shared, _ = engine.prefill([list(p) for p in prefixes], 1)
    slot = {p: k for k, p in enumerate(prefixes)}
    prefix = select(shared, torch.tensor([slot[tuple(x[:n])] for x, n in zip(inputs, lengths)]))
    return engine.extend(prefix, [r[n:] for r, n in zip(rows, lengths)], keep)


class _Ends:
    """Runs each row's end from its cache as the row finishes: scores[row] = (loss, exact) for tails,
    answers[row] = decoded tokens for answers; `tokens` counts the tokens forwarded for them."""

    def __init__(
        self, engine: Engine, inputs, generated, ends, stop_ids: set[int], limit: int, check_every: int, exact: bool
    ):
        self.engine, self.inputs, self.generated, self.ends = engine, inputs, generated, ends
        self.stop_ids, self.limit, self.check_every = stop_ids, limit, check_every
        self.exact = exact  # no masked slot inside a row: answers decode in groups of one feed length
        self.scores: dict[int, tuple[float, bool]] = {}
        self.answers: dict[int, list[int]] = {}
        self.tokens = 0

    def __call__(self, prefix: Prefix, batch_rows: list[int], rows: list[int]) -> None:
        """The cache holds each row's input and every generated token but the last (it is fed at the next
        step); the continuation ends at the first stop token. So tokens fed after it are masked out, and a last
        continuation token not yet fed goes in front of the end's tokens; positions go on from the
        continuation's end."""
        if not (self.exact and isinstance(self.ends[rows[0]], Answer)):
            return self._run(prefix, batch_rows, rows)
        # Right padding after the forced tokens would sit between them and the answer: one feed length a pass.
        groups: dict[int, list[int]] = {}
        for b, row in enumerate(rows):
            groups.setdefault(len(self._feed(row)[0]), []).append(b)
        for group in groups.values():
            self._run(prefix, [batch_rows[b] for b in group], [rows[b] for b in group])

    def _feed(self, row: int) -> tuple[list[int], int, int]:
        """(tokens to feed after the row's cache, continuation tokens in front of the end's, tokens fed)."""
        continuation = _trim(self.generated[row], self.stop_ids, self.limit)
        fed = min(len(self.generated[row]) - 1, len(continuation))
        return continuation[fed:] + self.ends[row].tokens, len(continuation) - fed, fed

    def _run(self, prefix: Prefix, batch_rows: list[int], rows: list[int]) -> None:
        sub = select(prefix, torch.tensor(batch_rows))
        feeds, leads = [], []
        for b, row in enumerate(rows):
            feed, lead, fed = self._feed(row)
            valid = sub.mask[b] == 1
            sub.mask[b, valid & (sub.mask[b].cumsum(0) > len(self.inputs[row]) + fed)] = 0
            feeds.append(feed)
            leads.append(lead)
        self.tokens += sum(len(f) for f in feeds)
        if isinstance(self.ends[rows[0]], Tail):
            self._score(sub, rows, feeds, [lead + self.ends[row].score_from for lead, row in zip(leads, rows)])
        else:
            self._answer(sub, rows, feeds)

    def _score(self, sub: Prefix, rows: list[int], feeds: list[list[int]], scored_from: list[int]) -> None:
        needed = sorted({t for r, s in zip(feeds, scored_from) for t in range(s - 1, len(r) - 1)})
        column = {t: c for c, t in enumerate(needed)}
        logits = self.engine.append(sub, feeds, torch.tensor(needed)).float()
        device = logits.device
        for b, (row, r, s) in enumerate(zip(rows, feeds, scored_from)):
            row_logits = logits[b, [column[t] for t in range(s - 1, len(r) - 1)]]
            target = torch.tensor(r[s:], device=device)
            loss = float(span_cross_entropy(row_logits, target))
            self.scores[row] = (loss, bool((row_logits.argmax(-1) == target).all()))

    def _answer(self, sub: Prefix, rows: list[int], feeds: list[list[int]]) -> None:
        """Greedy decoding after the forced tokens, over the finished rows' own cache (a copy: the batch it
        came from goes on without them)."""
        needed = sorted({len(f) - 1 for f in feeds})  # each row's last forced token predicts its first answer token
        column = {t: c for c, t in enumerate(needed)}
        logits = self.engine.append(sub, feeds, torch.tensor(needed))
        device = logits.device
        at = torch.tensor([column[len(f) - 1] for f in feeds], device=device)
        first = logits[torch.arange(len(rows), device=device), at].argmax(-1)
        generated = {row: [t] for row, t in zip(rows, first.tolist())}
        limits = {row: self.ends[row].max_new_tokens for row in rows}
        _decode(self.engine, sub, list(rows), generated, first, sub.lengths, self.stop_ids, limits, self.check_every)
        for row in rows:
            self.answers[row] = _trim(generated[row], self.stop_ids, limits[row])


@torch.no_grad()
def continuation_losses(
    model, prefixes: list[list[int]], rows: list[tuple[int, list[int]]], pad_id: int, store: PrefixStore | None = None
) -> list[float]:
    """Mean cross-entropy of each row's tokens right after its prefix: rows[r] = (prefix index, tokens), one batch.

    Many rows share a prefix (one question, many prompts): each prefix the rows use goes through the model
    once, and its cache and last logits (which predict a row's first token) serve every row that starts with it."""
    engine = Engine(model, pad_id, store)
    used = sorted({p for p, _ in rows})
    span = 2 * max(len(prefixes[p]) for p in used) + max(len(t) for _, t in rows)
    # The store pads between its part and the rest; past a sliding window that padding would take real slots.
    shared, first = engine.prefill([prefixes[p] for p in used], 1, from_store=not engine.gaps_change_window(span))
    first = first[:, -1].float()  # [P, V]: each prefix's prediction of a row's first token
    slot = {p: k for k, p in enumerate(used)}
    index = torch.tensor([slot[p] for p, _ in rows])
    logits = engine.append(select(shared, index), [t for _, t in rows], 0).float()
    losses = []
    for k, (p, t) in enumerate(rows):
        predicted = torch.cat([first[slot[p]][None].to(logits.device), logits[k, : len(t) - 1]])  # row i predicts t[i]
        losses.append(float(span_cross_entropy(predicted, torch.tensor(t, device=logits.device))))
    return losses

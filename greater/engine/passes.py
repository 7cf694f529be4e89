"""The batched passes every caller runs through: greedy generation (with drafts, tails or answers), sampling,
span and continuation losses, and pinning prefixes into the store.

Each pass batches its inputs (similar lengths together, see `generation_batches`), halves a batch that runs
out of memory (greater.engine.memory) and counts its work through `count`. `Passes` holds no state of its
own: `LanguageModel.passes` builds one from the model's current settings for every call, so a setting
changed on the model (batch size, prefix store, progress hook) holds for the next pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import GenerationConfig

from greater.engine import kv
from greater.engine.decode import Answer, Decoded, Tail, continuation_losses, greedy_decode
from greater.engine.generation_cache import Generation, GenerationCache
from greater.engine.losses import span_cross_entropy
from greater.engine.memory import BatchPlanner, run_with_backoff


@dataclass
class Batch:
    """Left-padded sequences; `offsets[i]` is where sequence i starts."""

    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    position_ids: torch.Tensor  # [B, L], counted from each sequence's first real token
    offsets: list[int]


def left_padded(sequences: list[list[int]], pad_id: int, device) -> Batch:
    ids, mask = kv.pad(sequences, pad_id, device, "left")
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return Batch(ids, mask, positions, [ids.shape[1] - len(s) for s in sequences])


@dataclass(frozen=True)
class Batching:
    batch_size: int  # sequences per generation batch
    batch_tokens: int  # padded input tokens per generation batch (0: no cap)
    loss_batch_size: int  # sequences per loss pass
    check_every: int = 8  # greedy decoding reads tokens back from the device every this many steps


def generation_batches(lengths: list[int], batch_size: int, batch_tokens: int) -> list[list[int]]:
    """Indices of inputs with these lengths, shortest first (little padding), in batches of at most
    `batch_size` sequences and, when `batch_tokens` is set, at most that many padded input tokens
    (always at least one sequence)."""
    batches: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        length = lengths[index]
        last = batches[-1] if batches else None
        fits = last is not None and len(last) < batch_size
        if fits and batch_tokens:
            fits = (len(last) + 1) * length <= batch_tokens  # the newest is the longest: it sets the padding
        if fits:
            last.append(index)
        else:
            batches.append([index])
    return batches


def until_stop(tokens: list[int], stop_ids: set[int]) -> list[int]:
    for n, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:n]
    return tokens


def _generation(decoded: Decoded, row: int) -> Generation:
    """Row `row` of a decoded batch, as the generation cache keeps it."""
    return Generation(
        decoded.tokens[row],
        decoded.tail_losses[row] if decoded.tail_losses is not None else None,
        decoded.tail_exact[row] if decoded.tail_exact is not None else None,
        decoded.answers[row] if decoded.answers is not None else None,
    )


def _merged(todo: list[int], fresh: Decoded | None, held: list[Generation | None], ends: list) -> Decoded:
    """Every row in input order: held[i] where the cache had it, else row todo.index(i) of `fresh`."""
    at = {i: k for k, i in enumerate(todo)}
    rows = [g if g is not None else _generation(fresh, at[i]) for i, g in enumerate(held)]
    accepted = [fresh.accepted[at[i]] if i in at else 0 for i in range(len(held))]
    kind = type(ends[0]) if held and ends[0] is not None else None
    read_ends = sum(len(e.tokens) for i, e in enumerate(ends) if i not in at and e is not None)
    return Decoded(
        [r.tokens for r in rows],
        accepted,
        fresh.decode_steps if fresh is not None else 0,
        [r.loss for r in rows] if kind is Tail else None,
        [r.exact for r in rows] if kind is Tail else None,
        (fresh.tail_tokens if fresh is not None else 0) + read_ends,
        [r.answer for r in rows] if kind is Answer else None,
    )


@dataclass(frozen=True)
class Passes:
    engine: kv.Engine
    stop_ids: set[int]
    batching: Batching
    count: Callable[..., None]  # count(what, amount=1): the model's usage, under its current role
    on_generation: Callable[[int, int], None] | None = None  # told (done, total) after each generated batch
    planner: BatchPlanner | None = None  # the model's memory of what batches fit, kept across calls
    generations: GenerationCache | None = None  # greedy rows kept on disk across runs (None: off)

    def _backoff(self, fn, items, batch_size: int, kind: str, length):
        return run_with_backoff(fn, items, batch_size, self.planner, kind, length)

    def batches(self, lengths: list[int]) -> list[list[int]]:
        return generation_batches(lengths, self.batching.batch_size, self.batching.batch_tokens)

    # ---- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def greedy(
        self,
        inputs: list[list[int]],
        max_new_tokens: int,
        drafts: list[list[int]] | None = None,
        tails: list[Tail] | list[Answer] | None = None,
        prefix_lengths: list[int] | None = None,
    ) -> Decoded:
        """Greedy decoding of every input, batched by similar length, counted; results in input order. With
        the generation cache, rows it holds are read from it and only the others are decoded (and kept)."""
        if self.generations is None:
            return self._greedy(inputs, max_new_tokens, drafts, tails, prefix_lengths)
        return self._greedy_cached(inputs, max_new_tokens, drafts, tails, prefix_lengths)

    def _greedy_cached(self, inputs, max_new_tokens: int, drafts, tails, prefix_lengths) -> Decoded:
        """`greedy` through the generation cache. A row read from it is counted as the work it stands for
        (a generation, its tokens generated and forwarded; no pass), so budgets and compute tables do not
        depend on what an earlier run left there; `cache_hits` and `cache_misses` say which rows were read."""
        cache, started = self.generations, time.perf_counter()
        ends = tails if tails is not None else [None] * len(inputs)
        keys = [cache.key(x, max_new_tokens, self.stop_ids, end) for x, end in zip(inputs, ends)]
        found = cache.get(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        own = time.perf_counter() - started  # the cache's own time (the decoding counts its time itself)
        fresh = None
        if todo:

            def rows(values: list | None) -> list | None:
                return None if values is None else [values[i] for i in todo]

            fresh = self._greedy(rows(inputs), max_new_tokens, rows(drafts), rows(tails), rows(prefix_lengths))
            writing = time.perf_counter()
            cache.put({keys[i]: _generation(fresh, k) for k, i in enumerate(todo)})
            own += time.perf_counter() - writing
            self.count("cache_misses", len(todo))
        hits = [i for i in range(len(inputs)) if keys[i] in found]
        if hits:
            self.count("cache_hits", len(hits))
            self.count("generations", len(hits))
            for i in hits:
                got, end = found[keys[i]], ends[i]
                self.count("tokens_generated", len(got.tokens) + len(got.answer or []))
                self.count("tokens_forwarded", len(inputs[i]) + (len(end.tokens) if end is not None else 0))
        self.count("seconds", own)
        return _merged(todo, fresh, [found.get(k) for k in keys], ends)

    def _greedy(self, inputs, max_new_tokens: int, drafts, tails, prefix_lengths) -> Decoded:
        """Greedy decoding of every input, without the generation cache."""
        drafts = drafts or [[] for _ in inputs]
        parts: list[Decoded] = []
        order: list[int] = []  # the input of each row of the concatenated parts
        started, done = time.perf_counter(), 0
        lengths = [len(x) + len(d[:max_new_tokens]) for x, d in zip(inputs, drafts)]
        for idx in self.batches(lengths):
            row_tails = [tails[i] for i in idx] if tails is not None else None
            row_prefixes = [prefix_lengths[i] for i in idx] if prefix_lengths is not None else None
            rows, row_drafts = [inputs[i] for i in idx], [drafts[i] for i in idx]
            decoded = self._decode_with_backoff(rows, row_drafts, max_new_tokens, row_tails, row_prefixes)
            self._count_decoded(decoded, rows, row_drafts, max_new_tokens)
            parts.append(decoded)
            order += idx
            done += len(idx)
            if self.on_generation is not None:
                self.on_generation(done, len(inputs))
        self.count("generations", len(inputs))
        self.count("seconds", time.perf_counter() - started)
        position = {i: k for k, i in enumerate(order)}
        return Decoded.concat(parts).take([position[i] for i in range(len(inputs))])

    def _count_decoded(self, decoded: Decoded, rows, drafts, max_new_tokens: int) -> None:
        """One batch's work, added to the model's usage."""
        self.count("tokens_forwarded", decoded.tail_tokens)
        for k in range(len(rows)):
            generated = decoded.tokens[k]
            self.count("tokens_generated", len(generated) + (len(decoded.answers[k]) if decoded.answers else 0))
            self.count("tokens_reused", min(decoded.accepted[k], len(generated)))
            rejected = len(drafts[k][:max_new_tokens]) - decoded.accepted[k]
            self.count("tokens_forwarded", len(rows[k]) + rejected)  # the prefill and the draft it threw away
        self.count("calls")

    def _decode_with_backoff(self, rows, drafts, max_new_tokens: int, tails, prefix_lengths) -> Decoded:
        """One generation batch; on out-of-memory it is split in halves (down to one row) and retried."""

        def run(part: list[int]) -> Decoded:
            return greedy_decode(
                self.engine.model,
                [rows[i] for i in part],
                max_new_tokens,
                self.stop_ids,
                self.engine.pad_id,
                [drafts[i] for i in part],
                check_every=self.batching.check_every,
                tails=[tails[i] for i in part] if tails is not None else None,
                prefix_lengths=[prefix_lengths[i] for i in part] if prefix_lengths is not None else None,
                store=self.engine.store,
            )

        def length(i: int) -> int:  # the row's width once decoded
            return len(rows[i]) + len(drafts[i][:max_new_tokens]) + max_new_tokens

        return Decoded.concat(self._backoff(run, list(range(len(rows))), len(rows), "generation", length))

    @torch.no_grad()
    def sample(self, inputs: list[list[int]], max_new_tokens: int, temperature: float, seed: int | None):
        """Sampled continuations through transformers' generate: plain temperature sampling, as the text
        baselines' papers sample. Every filter is set to its neutral value explicitly, since generate fills an
        unset (None) one from the checkpoint's generation config and then its own defaults (top_k=50 for every
        model; Llama-3-Instruct ships top_p=0.9)."""
        outputs: list[list[int]] = [[] for _ in inputs]
        config = GenerationConfig(
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            min_p=0.0,
            typical_p=1.0,
            epsilon_cutoff=0.0,
            eta_cutoff=0.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_new_tokens=max_new_tokens,
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.engine.pad_id,
        )
        if seed is not None:
            torch.manual_seed(seed)
        started = time.perf_counter()
        for idx in self.batches([len(x) for x in inputs]):
            batch = left_padded([inputs[i] for i in idx], self.engine.pad_id, self.engine.device)
            out = self.engine.model.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, generation_config=config
            )
            new = out[:, batch.input_ids.shape[1] :].tolist()
            for i, tokens in zip(idx, new):
                outputs[i] = until_stop(tokens, self.stop_ids)
                self.count("tokens_generated", len(outputs[i]))
            self.count("tokens_forwarded", int(batch.attention_mask.sum()))  # the prefill
            self.count("calls")
        self.count("generations", len(inputs))
        self.count("seconds", time.perf_counter() - started)
        return outputs

    # ---- losses -------------------------------------------------------------------------------
    def logits_at(self, batch: Batch, positions: torch.Tensor) -> torch.Tensor:
        """Logits only at the padded `positions` [P] (shared by the batch): [B, P, V]."""
        self.count("tokens_forwarded", int(batch.attention_mask.sum()))
        self.count("calls")
        out = self.engine.model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            logits_to_keep=positions.cpu(),  # indexes the last hidden states, on whichever device holds them
            use_cache=False,
        )
        return out.logits

    def batch_span_losses(
        self, batch: Batch, sequences: list[list[int]], spans: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence span cross-entropy [B] and exact match [B] for one padded batch."""
        # Token t is predicted at t - 1; shift every span into padded coordinates.
        rows = [(o + s - 1, o + e - 1) for o, (s, e) in zip(batch.offsets, spans)]
        keep = sorted({p for a, b in rows for p in range(a, b)})
        logits = self.logits_at(batch, torch.tensor(keep)).float()  # [B, P, V]
        device = logits.device
        column = {p: k for k, p in enumerate(keep)}
        losses, matches = [], []
        for i, ((a, b), seq, (s, e)) in enumerate(zip(rows, sequences, spans)):
            cols = torch.tensor([column[p] for p in range(a, b)], device=device)
            target = torch.tensor(seq[s:e], device=device)
            row_logits = logits[i, cols]  # [T, V]
            losses.append(span_cross_entropy(row_logits, target))  # greater/engine/losses.py: the one span loss
            matches.append(bool((row_logits.argmax(-1) == target).all()))
        return torch.stack(losses), torch.tensor(matches)

    def span_losses(
        self, sequences: list[list[int]], spans: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy of tokens seq[start:end] per sequence, and whether greedy decoding would
        produce exactly those tokens (argmax equals the target at every position). Returns ([N], [N])."""

        def run(chunk: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            seqs, sp = [sequences[i] for i in chunk], [spans[i] for i in chunk]
            with torch.no_grad():
                return self.batch_span_losses(left_padded(seqs, self.engine.pad_id, self.engine.device), seqs, sp)

        items, size = list(range(len(sequences))), self.batching.loss_batch_size
        parts = self._backoff(run, items, size, "loss", lambda i: len(sequences[i]))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def continuation_losses(self, prefixes: list[list[int]], rows: list[tuple[int, list[int]]]) -> list[float]:
        """Mean cross-entropy of rows[r][1] right after prefixes[rows[r][0]], every prefix run once (e.g. a
        question's chat before the prompt, shared by many prompts). Every row needs at least one token."""
        if any(not tokens for _, tokens in rows):
            raise ValueError("continuation_losses: every row needs at least one token to score")
        self.count("tokens_forwarded", sum(len(p) for p in prefixes) + sum(len(t) for _, t in rows))
        self.count("calls")
        engine = self.engine

        def run(chunk: list[tuple[int, list[int]]]) -> list[float]:
            return continuation_losses(engine.model, prefixes, chunk, engine.pad_id, engine.store)

        def length(row: tuple[int, list[int]]) -> int:
            return len(prefixes[row[0]]) + len(row[1])

        parts = self._backoff(run, rows, self.batching.loss_batch_size, "continuation", length)
        return [x for part in parts for x in part]

    @torch.no_grad()
    def pin(self, prefixes: list[list[int]]) -> None:
        """Compute the cache of each prefix not yet in the store and keep it there, so that every later pass
        starting with it reads it instead (e.g. the training questions' chat before the prompt)."""
        store = self.engine.store
        if store is None:
            return
        todo = [p for p in dict.fromkeys(tuple(p) for p in prefixes) if p and p not in store]
        window = kv.sliding_window(self.engine.model) or 0  # the text config's: Gemma-3's top config has none
        todo = [p for p in todo if not window or len(p) < window - 1]  # a sliding layer keeps window - 1 tokens

        def run(chunk: list[tuple[int, ...]]) -> None:
            prefix, _ = self.engine.prefill([list(p) for p in chunk], 1, from_store=False)
            for b, p in enumerate(chunk):  # left-padded: each row's own tokens are its last len(p) positions
                store.add(p, kv.snapshot(prefix, b, len(p)))

        if todo:
            self.count("tokens_forwarded", sum(len(p) for p in todo))
            self.count("calls")
            self._backoff(run, todo, self.batching.batch_size, "pin", len)

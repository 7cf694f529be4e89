"""One wrapper over a transformers causal LM: chat formatting, batched greedy generation, and
cross-entropy over chosen token spans. Weights never get gradients."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedModel

from greater.config import ModelConfig
from greater.engine.decode import Decoded, Tail, continuation_losses, greedy_decode, start_cache
from greater.engine.losses import span_cross_entropy
from greater.engine.memory import run_with_backoff
from greater.engine.prefix_store import PrefixStore
from greater.models.sources import resolve_weights

log = logging.getLogger(__name__)

SLOT = "\u2063PROMPT\u2063"  # marks where the optimized prompt goes inside a rendered chat
PLACEMENTS = ("after", "before", "system")


@dataclass
class Batch:
    """Left-padded sequences; `offsets[i]` is where sequence i starts."""

    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor  # [B, L]
    position_ids: torch.Tensor  # [B, L], counted from each sequence's first real token
    offsets: list[int]


def check_batching(batch_size: int, batch_tokens: int) -> None:
    if batch_size < 1 or batch_tokens < 0:
        raise ValueError(
            f"model.batch_size={batch_size}, model.batch_tokens={batch_tokens}: "
            "set batch_size >= 1 and batch_tokens >= 0 (0 means no token cap)"
        )


def check_prefix_cache(prefix_cache_mb: int) -> None:
    if prefix_cache_mb < 0:
        raise ValueError(f"model.prefix_cache_mb={prefix_cache_mb}: set it >= 0 (0 switches the store off)")


class LanguageModel:
    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer,
        name: str = "model",
        chat_template: bool = True,
        system_prompt: str | None = None,
        batch_size: int = 8,
        batch_tokens: int = 0,
        loss_batch_size: int | None = None,
        reuse_reasoning: bool = False,
        prefix_cache_mb: int = 1024,
    ) -> None:
        check_batching(batch_size, batch_tokens)
        check_prefix_cache(prefix_cache_mb)
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.use_chat_template = chat_template and getattr(tokenizer, "chat_template", None) is not None
        self.system_prompt = system_prompt
        self.batch_size, self.batch_tokens = batch_size, batch_tokens
        # Sequences per loss / gradient pass: a backward pass keeps every layer's activations, so on a GPU it
        # fits far fewer sequences than generation does. None: the generation batch size.
        if loss_batch_size is not None and loss_batch_size < 1:
            raise ValueError(f"model.loss_batch_size={loss_batch_size}: set it >= 1, or null for batch_size")
        self.loss_batch_size = loss_batch_size or batch_size
        self.check_every = 8  # greedy decoding reads tokens back from the device every this many steps
        self.reuse_reasoning = reuse_reasoning  # the Scorer's default: decode new rollouts from a draft
        # Caches of prefixes that recur in every pass (the training questions' chat before the prompt).
        self.prefixes = PrefixStore(int(prefix_cache_mb * 2**20)) if prefix_cache_mb else None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = self._stop_ids()
        # Work done, keyed "<role>.<what>": roles are "task" (rolling out a task prompt: scoring, evaluation)
        # and "optimizer" (a method's own generations, e.g. a meta-prompt); what is tokens_generated,
        # tokens_forwarded, generations, calls and seconds. Equal-compute tables and budgets read these.
        self.counters: Counter[str] = Counter()
        self.role = "task"
        # Told (done, total) after each generated batch; the runner points it at the callbacks.
        self.on_generation: Callable[[int, int], None] | None = None

    @classmethod
    def from_config(cls, cfg: ModelConfig, cache_dir: str | Path = "~/.cache/greater") -> LanguageModel:
        check_batching(cfg.batch_size, cfg.batch_tokens)  # before minutes of loading weights
        transformers.utils.logging.disable_progress_bar()  # weight-loading bars drown the run's own progress
        device = str(getattr(cfg.device, "value", cfg.device))
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"model.device={device} but torch sees no CUDA device; set model.device=cpu")
        weights = resolve_weights(cfg, cache_dir)
        dtype = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)  # "auto": the checkpoint's own
        common: dict = {"trust_remote_code": cfg.trust_remote_code}
        if cfg.revision:
            common["revision"] = cfg.revision
        tokenizer = AutoTokenizer.from_pretrained(weights, **common)
        # device_map puts each weight straight onto the device as it loads ("auto": spread over every GPU),
        # instead of building the whole model in host memory first.
        model = AutoModelForCausalLM.from_pretrained(weights, dtype=dtype, device_map=device, **common)
        return cls(
            model,
            tokenizer,
            cfg.name,
            cfg.chat_template,
            cfg.system_prompt,
            cfg.batch_size,
            cfg.batch_tokens,
            loss_batch_size=getattr(cfg, "loss_batch_size", None),
            reuse_reasoning=getattr(cfg, "reuse_reasoning", False),
            prefix_cache_mb=getattr(cfg, "prefix_cache_mb", 1024),
        )

    @contextmanager
    def acting_as(self, role: str) -> Iterator[None]:
        """Count the work done inside this block under `role`."""
        previous, self.role = self.role, role
        try:
            yield
        finally:
            self.role = previous

    def count(self, what: str, amount: float = 1) -> None:
        self.counters[f"{self.role}.{what}"] += amount

    def total(self, what: str) -> float:
        """A counter summed over roles, e.g. total("tokens_generated")."""
        return sum(v for k, v in self.counters.items() if k.endswith("." + what))

    # ---- text <-> ids -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def embedding_matrix(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight  # [V, d]

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def _stop_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        for token in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                ids.add(token_id)
        return {i for i in ids if i is not None}

    # ---- chat formatting ----------------------------------------------------------------------
    def prompt_slot(self, question: str, placement: str = "after") -> tuple[list[int], list[int]]:
        """Token ids before and after the optimized prompt, for one question.

        The chat is rendered once with a marker where the prompt goes and split there, so the prompt's
        tokens can be swapped without re-rendering (and the pieces tokenize the same every time).
        """
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown prompt placement '{placement}'; use one of {', '.join(PLACEMENTS)}")
        system, user = self.system_prompt, f"{question}\n{SLOT}"
        if placement == "before":
            user = f"{SLOT}\n{question}"
        elif placement == "system":
            system, user = SLOT, question
        text = self._render(system, user)
        before, after = text.split(SLOT)
        return self.encode(before), self.encode(after)

    def _render(self, system: str | None, user: str) -> str:
        if not self.use_chat_template:
            bos = self.tokenizer.bos_token or ""
            head = f"{system}\n\n" if system else ""
            return f"{bos}{head}Question: {user}\nAnswer:"
        messages = [{"role": "user", "content": user}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:
            if system is None:
                raise
            merged = [{"role": "user", "content": f"{system}\n\n{user}"}]
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    # ---- batching -----------------------------------------------------------------------------
    def pad(self, sequences: list[list[int]]) -> Batch:
        length = max(len(s) for s in sequences)
        pad_id = self.tokenizer.pad_token_id
        offsets = [length - len(s) for s in sequences]
        ids = torch.tensor([[pad_id] * o + s for o, s in zip(offsets, sequences)], device=self.device)
        mask = torch.tensor([[0] * o + [1] * len(s) for o, s in zip(offsets, sequences)], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return Batch(ids, mask, positions, offsets)

    # ---- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        inputs: list[list[int]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        drafts: list[list[int]] | None = None,
    ) -> list[list[int]]:
        """Continuations (new tokens only, stop token dropped), batched by similar length: greedy when
        `temperature` is 0, else sampled (reproducibly when `seed` is given).

        Greedy decoding may start from `drafts` (a guess at each continuation, e.g. the reasoning of a prompt
        one token away): the agreeing prefix of a draft is verified in one pass instead of generated token by
        token, and the result is the same as without it (see greater.engine.decode)."""
        if temperature > 0:
            return self._sample(inputs, max_new_tokens, temperature, seed)
        return self.generate_and_score(inputs, max_new_tokens, drafts)[0]

    @torch.no_grad()
    def generate_and_score(
        self,
        inputs: list[list[int]],
        max_new_tokens: int,
        drafts: list[list[int]] | None = None,
        tails: list[Tail] | None = None,
        prefix_lengths: list[int] | None = None,
    ) -> tuple[list[list[int]], torch.Tensor | None, torch.Tensor | None]:
        """Greedy continuations, and with `tails` (e.g. extractor + gold answer) the mean cross-entropy of
        each tail's scored tokens after the continuation and whether greedy decoding would emit exactly them:
        (continuations, losses [N], exact [N]). The same numbers as `span_losses` over input + continuation +
        tail, read from the generation's own cache instead of a second pass over the whole sequence.
        Inputs in one batch whose first `prefix_lengths[i]` tokens are the same (a question's chat under
        several prompts) go through that prefix once."""
        drafts = drafts or [[] for _ in inputs]
        outputs: list[list[int]] = [[] for _ in inputs]
        losses, exact = [0.0] * len(inputs), [False] * len(inputs)
        started, done = time.perf_counter(), 0
        lengths = [len(x) + len(d[:max_new_tokens]) for x, d in zip(inputs, drafts)]
        for idx in self.generation_batches(lengths):
            rows, row_drafts = [inputs[i] for i in idx], [drafts[i] for i in idx]
            row_tails = [tails[i] for i in idx] if tails is not None else None
            row_prefixes = [prefix_lengths[i] for i in idx] if prefix_lengths is not None else None
            decoded = self._decode_with_backoff(rows, row_drafts, max_new_tokens, row_tails, row_prefixes)
            self.count("tokens_forwarded", decoded.tail_tokens)
            for k, i in enumerate(idx):
                outputs[i] = decoded.tokens[k]
                if tails is not None:
                    losses[i], exact[i] = decoded.tail_losses[k], decoded.tail_exact[k]
                self.count("tokens_generated", len(outputs[i]))
                self.count("tokens_reused", min(decoded.accepted[k], len(outputs[i])))
                rejected = len(row_drafts[k][:max_new_tokens]) - decoded.accepted[k]
                self.count("tokens_forwarded", len(rows[k]) + rejected)  # the prefill and the draft it threw away
            self.count("calls")
            done += len(idx)
            if self.on_generation is not None:
                self.on_generation(done, len(inputs))
        self.count("generations", len(inputs))
        self.count("seconds", time.perf_counter() - started)
        if tails is None:
            return outputs, None, None
        return outputs, torch.tensor(losses), torch.tensor(exact)

    def _decode_with_backoff(
        self,
        rows: list[list[int]],
        drafts: list[list[int]],
        max_new_tokens: int,
        tails: list[Tail] | None = None,
        prefix_lengths: list[int] | None = None,
    ) -> Decoded:
        """One generation batch; on out-of-memory it is split in halves (down to one row) and retried."""

        def run(part: list[int]) -> Decoded:
            return greedy_decode(
                self.model,
                [rows[i] for i in part],
                max_new_tokens,
                self.stop_ids,
                self.tokenizer.pad_token_id,
                [drafts[i] for i in part],
                check_every=self.check_every,
                tails=[tails[i] for i in part] if tails is not None else None,
                prefix_lengths=[prefix_lengths[i] for i in part] if prefix_lengths is not None else None,
                store=self.prefixes,
            )

        parts = run_with_backoff(run, list(range(len(rows))), len(rows))
        scored = tails is not None
        return Decoded(
            [t for p in parts for t in p.tokens],
            [a for p in parts for a in p.accepted],
            sum(p.decode_steps for p in parts),
            [x for p in parts for x in p.tail_losses] if scored else None,
            [x for p in parts for x in p.tail_exact] if scored else None,
            sum(p.tail_tokens for p in parts),
        )

    def _sample(self, inputs: list[list[int]], max_new_tokens: int, temperature: float, seed: int | None):
        """Sampled continuations through transformers' generate."""
        outputs: list[list[int]] = [[] for _ in inputs]
        config = GenerationConfig(
            do_sample=True,
            temperature=temperature,
            top_p=None,
            top_k=None,
            max_new_tokens=max_new_tokens,
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if seed is not None:
            torch.manual_seed(seed)
        started = time.perf_counter()
        for idx in self.generation_batches([len(x) for x in inputs]):
            batch = self.pad([inputs[i] for i in idx])
            out = self.model.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, generation_config=config
            )
            new = out[:, batch.input_ids.shape[1] :].tolist()
            for i, tokens in zip(idx, new):
                outputs[i] = self._until_stop(tokens)
                self.count("tokens_generated", len(outputs[i]))
            self.count("tokens_forwarded", int(batch.attention_mask.sum()))  # the prefill
            self.count("calls")
        self.count("generations", len(inputs))
        self.count("seconds", time.perf_counter() - started)
        return outputs

    def chat_prompt(self, user: str, system: str | None = None) -> list[int]:
        """A plain chat turn (no optimized slot) ready for generation: how optimizers ask the model things."""
        return self.encode(self._render(system if system is not None else self.system_prompt, user))

    def complete(
        self, messages: list[str], max_new_tokens: int, temperature: float = 0.0, n: int = 1, seed: int | None = None
    ) -> list[list[str]]:
        """`n` replies to each user message, as text: [message][sample]."""
        inputs = [self.chat_prompt(m) for m in messages for _ in range(n)]
        flat = self.generate(
            inputs, max_new_tokens, temperature=temperature if n == 1 else max(temperature, 1e-3), seed=seed
        )
        texts = [self.tokenizer.decode(t, skip_special_tokens=True) for t in flat]
        return [texts[i * n : (i + 1) * n] for i in range(len(messages))]

    def generation_batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices of inputs with these lengths, shortest first (little padding), in batches of at most
        `batch_size` sequences and, when `batch_tokens` is set, at most that many padded input tokens
        (always at least one sequence)."""
        batches: list[list[int]] = []
        for index in sorted(range(len(lengths)), key=lengths.__getitem__):
            length = lengths[index]
            last = batches[-1] if batches else None
            fits = last is not None and len(last) < self.batch_size
            if fits and self.batch_tokens:
                fits = (len(last) + 1) * length <= self.batch_tokens  # the newest is the longest: it sets the padding
            if fits:
                last.append(index)
            else:
                batches.append([index])
        return batches

    def _until_stop(self, tokens: list[int]) -> list[int]:
        for n, token in enumerate(tokens):
            if token in self.stop_ids:
                return tokens[:n]
        return tokens

    # ---- losses -------------------------------------------------------------------------------
    def logits_at(self, batch: Batch, positions: torch.Tensor, inputs_embeds: torch.Tensor | None = None):
        """Logits only at the padded `positions` [P] (shared by the batch): [B, P, V]."""
        kwargs = {"inputs_embeds": inputs_embeds} if inputs_embeds is not None else {"input_ids": batch.input_ids}
        self.count("tokens_forwarded", int(batch.attention_mask.sum()))
        self.count("calls")
        out = self.model(
            **kwargs,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            logits_to_keep=positions,
            use_cache=False,
        )
        return out.logits

    def span_losses(
        self, sequences: list[list[int]], spans: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy of tokens seq[start:end] per sequence, and whether greedy decoding would
        produce exactly those tokens (argmax equals the target at every position). Returns ([N], [N])."""

        def run(chunk: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            seqs, sp = [sequences[i] for i in chunk], [spans[i] for i in chunk]
            with torch.no_grad():
                return self.batch_span_losses(self.pad(seqs), seqs, sp)

        parts = run_with_backoff(run, list(range(len(sequences))), self.loss_batch_size)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def continuation_losses(self, prefixes: list[list[int]], rows: list[tuple[int, list[int]]]) -> list[float]:
        """Mean cross-entropy of rows[r][1] right after prefixes[rows[r][0]], every prefix run once (e.g. a
        question's chat before the prompt, shared by many prompts). Every row needs at least one token."""
        if any(not tokens for _, tokens in rows):
            raise ValueError("continuation_losses: every row needs at least one token to score")
        self.count("tokens_forwarded", sum(len(p) for p in prefixes) + sum(len(t) for _, t in rows))
        self.count("calls")

        def run(chunk: list[tuple[int, list[int]]]) -> list[float]:
            return continuation_losses(self.model, prefixes, chunk, self.tokenizer.pad_token_id, self.prefixes)

        return [x for part in run_with_backoff(run, rows, self.loss_batch_size) for x in part]

    @torch.no_grad()
    def pin_prefixes(self, prefixes: list[list[int]]) -> None:
        """Compute the cache of each prefix not yet in the store and keep it there, so that every later pass
        starting with it reads it instead (e.g. the training questions' chat before the prompt)."""
        if self.prefixes is None:
            return
        todo = [p for p in dict.fromkeys(tuple(p) for p in prefixes) if p and p not in self.prefixes]
        window = getattr(self.model.config, "sliding_window", None) or 0
        todo = [p for p in todo if not window or len(p) < window - 1]  # a sliding layer keeps window - 1 tokens

        def run(chunk: list[tuple[int, ...]]) -> None:
            cache, _, _ = start_cache(self.model, [list(p) for p in chunk], self.tokenizer.pad_token_id, 1)
            for b, p in enumerate(chunk):  # left-padded: each row's own tokens are its last len(p) positions
                own = slice(-len(p), None)
                layers = [(layer.keys[b, :, own].clone(), layer.values[b, :, own].clone()) for layer in cache.layers]
                self.prefixes.add(p, layers)

        if todo:
            self.count("tokens_forwarded", sum(len(p) for p in todo))
            self.count("calls")
            run_with_backoff(run, todo, self.batch_size)

    def batch_span_losses(
        self,
        batch: Batch,
        sequences: list[list[int]],
        spans: list[tuple[int, int]],
        inputs_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable per-sequence span cross-entropy [B] and exact match [B] for one padded batch."""
        # Token t is predicted at t - 1; shift every span into padded coordinates.
        rows = [(o + s - 1, o + e - 1) for o, (s, e) in zip(batch.offsets, spans)]
        keep = sorted({p for a, b in rows for p in range(a, b)})
        keep_t = torch.tensor(keep, device=self.device)
        logits = self.logits_at(batch, keep_t, inputs_embeds).float()  # [B, P, V]
        column = {p: k for k, p in enumerate(keep)}
        losses, matches = [], []
        for i, ((a, b), seq, (s, e)) in enumerate(zip(rows, sequences, spans)):
            cols = torch.tensor([column[p] for p in range(a, b)], device=self.device)
            target = torch.tensor(seq[s:e], device=self.device)
            row_logits = logits[i, cols]  # [T, V]
            losses.append(span_cross_entropy(row_logits, target))  # greater/engine/losses.py: the one span loss
            matches.append(bool((row_logits.argmax(-1) == target).all()))
        return torch.stack(losses), torch.tensor(matches)

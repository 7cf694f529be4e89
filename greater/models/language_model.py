"""One wrapper over a transformers causal LM: its weights, tokenizer, device, chat format (greater.models.chat)
and the ledger its work is counted in (greater.usage). The batched passes (generation, span and continuation
losses, pinning prefixes) live in greater.engine.passes; the methods here delegate to them, so callers keep one
handle. Weights never get gradients."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from greater.config import DEFAULT_CACHE_DIR, ModelConfig
from greater.engine import kv
from greater.engine.decode import Answer, Tail
from greater.engine.generation_cache import GenerationCache
from greater.engine.kernels import CpuKernels, use_cpu_kernels
from greater.engine.memory import BatchPlanner
from greater.engine.model_identity import model_identity
from greater.engine.passes import Batch, Batching, Passes, generation_batches, left_padded, until_stop
from greater.engine.prefix_store import PrefixStore
from greater.models.chat import PLACEMENTS, SLOT, ChatFormat
from greater.models.devices import check_device
from greater.models.registry import load_model_config
from greater.models.system_turn import without_system_turn
from greater.models.weights import resolve_weights
from greater.usage import Ledger

log = logging.getLogger(__name__)

__all__ = ["PLACEMENTS", "SLOT", "Batch", "LanguageModel", "check_attention", "check_batching", "check_prefix_cache"]


def check_batching(batch_size: int, batch_tokens: int) -> None:
    if batch_size < 1 or batch_tokens < 0:
        raise ValueError(
            f"model.batch_size={batch_size}, model.batch_tokens={batch_tokens}: "
            "set batch_size >= 1 and batch_tokens >= 0 (0 means no token cap)"
        )


ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")


def check_attention(name: str | None) -> None:
    if name is not None and name not in ATTENTION:
        raise ValueError(f"model.attn_implementation={name}: use one of {', '.join(ATTENTION)}, or null")


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
        cpu_kernels: bool = True,
        usage: Ledger | None = None,
    ) -> None:
        check_batching(batch_size, batch_tokens)
        check_prefix_cache(prefix_cache_mb)
        self.model = model.eval().requires_grad_(False)
        # On a CPU: packed float32 linear layers and one-token attention as small products (greater.engine.kernels).
        self.kernels = use_cpu_kernels(self.model) if cpu_kernels else CpuKernels()
        self.tokenizer = tokenizer
        self.name = name
        use_template = chat_template and getattr(tokenizer, "chat_template", None) is not None
        self.chat = ChatFormat(tokenizer, use_template, system_prompt)
        self.batch_size, self.batch_tokens = batch_size, batch_tokens
        # Sequences per loss / gradient pass: a backward pass keeps every layer's activations, so on a GPU it
        # fits far fewer sequences than generation does. None: the generation batch size.
        if loss_batch_size is not None and loss_batch_size < 1:
            raise ValueError(f"model.loss_batch_size={loss_batch_size}: set it >= 1, or null for batch_size")
        self.loss_batch_size = loss_batch_size or batch_size
        # What each kind of pass learned about the batches that fit (out-of-memory, measured cost per token),
        # kept for the model's lifetime: batch sizes above are ceilings (greater.engine.memory).
        self._memory = BatchPlanner(self.device)
        self.check_every = 8  # greedy decoding reads tokens back from the device every this many steps
        self.reuse_reasoning = reuse_reasoning  # the Scorer's default: decode new rollouts from a draft
        # Caches of prefixes that recur in every pass (the training questions' chat before the prompt).
        self.prefixes = PrefixStore(int(prefix_cache_mb * 2**20)) if prefix_cache_mb else None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = self._stop_ids()
        # Work done, one Usage per role (greater.usage): "task" (rolling out a task prompt: scoring,
        # evaluation) and whatever role `acting_as` names. `usage`: the run's ledger, which the runner owns and
        # hands to every model working for the run (a writer model too); None: a ledger of this model's own.
        # Equal-compute tables and budgets read it.
        self.usage: Ledger = usage if usage is not None else Ledger()
        self.role = "task"
        # Told (done, total) after each generated batch; the runner points it at the callbacks.
        self.on_generation: Callable[[int, int], None] | None = None
        # Greedy rows kept on disk across runs (greater.engine.generation_cache); None: off. See
        # `use_generation_cache`.
        self.generations: GenerationCache | None = None

    @classmethod
    def from_config(
        cls, cfg: ModelConfig, cache_dir: str | Path = DEFAULT_CACHE_DIR, usage: Ledger | None = None
    ) -> LanguageModel:
        check_batching(cfg.batch_size, cfg.batch_tokens)  # before minutes of loading weights
        attention = cfg.attn_implementation
        check_attention(attention)
        transformers.utils.logging.disable_progress_bar()  # weight-loading bars drown the run's own progress
        device = str(getattr(cfg.device, "value", cfg.device))
        check_device(device)  # one line naming the setting, not torch's own error after the tokenizer loads
        weights = resolve_weights(cfg, cache_dir)
        dtype = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)  # "auto": the checkpoint's own
        common: dict = {"trust_remote_code": cfg.trust_remote_code}
        if cfg.revision:
            common["revision"] = cfg.revision
        tokenizer = AutoTokenizer.from_pretrained(weights, **common)
        if not cfg.system_turn and cfg.chat_template and getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = without_system_turn(tokenizer)  # the reference sends no system turn
        # device_map puts each weight straight onto the device as it loads ("auto": spread over every GPU),
        # instead of building the whole model in host memory first.
        if attention is not None:
            common["attn_implementation"] = attention
        try:
            model = AutoModelForCausalLM.from_pretrained(weights, dtype=dtype, device_map=device, **common)
        except (ValueError, ImportError) as error:
            if attention is None or ("attn" not in str(error) and "attention" not in str(error)):
                raise
            reason = str(error).split(". ")[0]  # e.g. Gemma-2 and sdpa; flash_attention_2 without flash-attn
            raise ValueError(
                f"model.attn_implementation={attention}: {reason}; set another one or null (transformers' choice)"
            ) from error
        return cls(
            model,
            tokenizer,
            cfg.name,
            cfg.chat_template,
            cfg.system_prompt,
            cfg.batch_size,
            cfg.batch_tokens,
            loss_batch_size=cfg.loss_batch_size,
            reuse_reasoning=cfg.reuse_reasoning,
            prefix_cache_mb=cfg.prefix_cache_mb,
            cpu_kernels=cfg.cpu_kernels,
            usage=usage,
        )

    def use_generation_cache(self, cache_dir: str | Path, max_mb: int) -> GenerationCache:
        """Read greedy generations from, and keep them in, `<cache_dir>/generations.sqlite` (at most about
        `max_mb` MB): the same tokens as decoding them. Hashes the weights once (about 0.5 s per 500 MB)."""
        identity = model_identity(self.model, packed_kernels=self.kernels.packed_layers > 0)
        self.generations = GenerationCache.under(cache_dir, max_mb, identity)
        return self.generations

    @contextmanager
    def acting_as(self, role: str) -> Iterator[None]:
        """Count the work done inside this block under `role`."""
        previous, self.role = self.role, role
        try:
            yield
        finally:
            self.role = previous

    def count(self, what: str, amount: float = 1) -> None:
        self.usage.count(self.role, what, amount)

    def total(self, what: str) -> float:
        """A counter summed over roles, e.g. total("tokens_generated")."""
        return self.usage.total(what)

    # ---- text <-> ids -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def memory(self) -> BatchPlanner:
        """What the passes learned about the batches that fit, measured on the device the model is on now."""
        self._memory.device = self.device
        return self._memory

    @property
    def max_positions(self) -> int | None:
        """How many positions the model reads (its context window); None when its config does not say."""
        config = self.model.config
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

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

    # ---- chat formatting (greater.models.chat) ------------------------------------------------
    @property
    def use_chat_template(self) -> bool:
        return self.chat.use_chat_template

    @property
    def system_prompt(self) -> str | None:
        return self.chat.system_prompt

    def prompt_slot(self, question: str, placement: str = "after") -> tuple[list[int], list[int]]:
        """Token ids before and after the optimized prompt, for one question (see ChatFormat.slot)."""
        return self.chat.slot(question, placement)

    def chat_prompt(self, user: str, system: str | None = None) -> list[int]:
        """A plain chat turn (no optimized slot) ready for generation: how optimizers ask the model things."""
        return self.chat.turn(user, system)

    # ---- batching -----------------------------------------------------------------------------
    def pad(self, sequences: list[list[int]]) -> Batch:
        return left_padded(sequences, self.tokenizer.pad_token_id, self.device)

    @property
    def engine(self) -> kv.Engine:
        """The model bound to its pad id and prefix store, for the engine's cached passes."""
        return kv.Engine(self.model, self.tokenizer.pad_token_id, self.prefixes)

    # ---- batched passes (greater.engine.passes) ----------------------------------------------
    @property
    def passes(self) -> Passes:
        """The engine's batched passes under the model's current settings (built per call, holding nothing)."""
        batching = Batching(self.batch_size, self.batch_tokens, self.loss_batch_size, self.check_every)
        return Passes(
            self.engine, self.stop_ids, batching, self.count, self.on_generation, self.memory, self.generations
        )

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
            return self.passes.sample(inputs, max_new_tokens, temperature, seed)
        return self.passes.greedy(inputs, max_new_tokens, drafts).tokens

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
        decoded = self.passes.greedy(inputs, max_new_tokens, drafts, tails, prefix_lengths)
        if tails is None:
            return decoded.tokens, None, None
        return decoded.tokens, torch.tensor(decoded.tail_losses), torch.tensor(decoded.tail_exact)

    @torch.no_grad()
    def generate_and_answer(
        self, inputs: list[list[int]], max_new_tokens: int, forced: list[int], answer_tokens: int
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Greedy continuations, then after each one the `forced` tokens (e.g. the extractor) and up to
        `answer_tokens` greedy tokens: (continuations, answers). The same tokens as generating the
        continuations and then generating again from input + continuation + forced, read from the
        continuation's own cache instead of a second pass over the whole sequence."""
        decoded = self.passes.greedy(inputs, max_new_tokens, None, [Answer(forced, answer_tokens)] * len(inputs))
        return decoded.tokens, decoded.answers

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
        """Indices of inputs with these lengths in generation batches (see passes.generation_batches)."""
        return generation_batches(lengths, self.batch_size, self.batch_tokens)

    def _until_stop(self, tokens: list[int]) -> list[int]:
        return until_stop(tokens, self.stop_ids)

    # ---- losses -------------------------------------------------------------------------------
    def logits_at(self, batch: Batch, positions: torch.Tensor) -> torch.Tensor:
        """Logits only at the padded `positions` [P] (shared by the batch): [B, P, V]."""
        return self.passes.logits_at(batch, positions)

    def span_losses(
        self, sequences: list[list[int]], spans: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy of tokens seq[start:end] per sequence, and whether greedy decoding would
        produce exactly those tokens (argmax equals the target at every position). Returns ([N], [N])."""
        return self.passes.span_losses(sequences, spans)

    def continuation_losses(self, prefixes: list[list[int]], rows: list[tuple[int, list[int]]]) -> list[float]:
        """Mean cross-entropy of rows[r][1] right after prefixes[rows[r][0]], every prefix run once (e.g. a
        question's chat before the prompt, shared by many prompts). Every row needs at least one token."""
        return self.passes.continuation_losses(prefixes, rows)

    def pin_prefixes(self, prefixes: list[list[int]]) -> None:
        """Compute the cache of each prefix not yet in the store and keep it there, so that every later pass
        starting with it reads it instead (e.g. the training questions' chat before the prompt)."""
        self.passes.pin(prefixes)

    def batch_span_losses(
        self, batch: Batch, sequences: list[list[int]], spans: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence span cross-entropy [B] and exact match [B] for one padded batch."""
        return self.passes.batch_span_losses(batch, sequences, spans)


def load_model(name: str = "smollm2-135m", cache_dir: str | Path = DEFAULT_CACHE_DIR) -> LanguageModel:
    """A model by its config name in conf/model/ (e.g. "smollm2-135m", "gemma2-9b")."""
    return LanguageModel.from_config(load_model_config(name), cache_dir)

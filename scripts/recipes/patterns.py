"""The same GReaTer step computed three ways, for scripts/benchmark.py (recipes.benchmark).

- ours: the engine's own `GreaterOptimizer.step` (its stages timed by the engine's own timer).
- reference: the work the reference implementation (psunlpgroup/GreaTer) does for that step, done its way:
  generation in batches of 9 with the key-value cache off (models load with use_cache=False), the proposal
  logits from one forward per example at every position, the gradient from one forward and backward per
  example in train mode with weight gradients on, and each candidate re-scored one at a time (its reasoning
  regenerated in two halves, then a forward with full logits).
- floor: the same tokens as bare batched model calls: one cached generation of every reasoning, one forward
  over every answer, one forward and backward for the gradient.

Both run on transformers' and torch's own kernels (greater.engine.kernels.transformers_kernels), as plain
transformers calls do; ours runs on the engine's CPU kernels. The benchmark's `floor_kernels` is the floor on
ours' kernels.

The reference and floor patterns take the prompt, position and re-scored candidates from ours, and every
engine setting from the optimizer's own config (a `StepPlan`), so all three do the same tokens on the same
inputs with the same loss.
"""

from __future__ import annotations

import gc
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch

from greater.engine.frame import answer_sequences
from greater.engine.gradient import position_gradient
from greater.engine.losses import span_cross_entropy
from greater.models.language_model import LanguageModel
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.objective import PromptScorer

REFERENCE_BATCH = 9  # the reference's generation batch (AM:873)


# ---- what the patterns share with the engine's step -----------------------------------------------
@dataclass(frozen=True)
class EngineSettings:
    """The engine settings a pattern must share with the step it is compared with, read from the
    optimizer's own config: a field renamed there fails here, instead of falling back to a default."""

    control_weight: float  # the fluency term's weight, in the gradient's loss
    answer_temperature: float  # the answer logits are divided by it in the gradient's loss
    gradient_over_reasoning: bool  # False: the gradient with the answer right after the question
    token_filter: str  # which tokens the step may propose (ours only: the others take its candidates)
    n_rescore: int  # at most this many candidates are re-scored (ours decides; the others re-score them)

    @classmethod
    def of(cls, config: GreaterConfig) -> EngineSettings:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class StepPlan:
    """One step as the engine took it: the prompt, the position, the candidates it re-scored (the current
    token left out), and its settings. The reference and floor patterns do exactly this step."""

    prompt: list[int]
    position: int
    candidates: list[int]
    settings: EngineSettings

    def candidate_prompts(self) -> list[list[int]]:
        j = self.position
        return [self.prompt[:j] + [t] + self.prompt[j + 1 :] for t in self.candidates]


# ---- measuring ------------------------------------------------------------------------------------
def _reset_peak_rss() -> bool:
    try:  # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM) of this process
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # since the start, not per stage


@contextmanager
def measure(lm: LanguageModel, out: dict[str, dict], stage: str) -> Iterator[None]:
    """Adds the stage's wall and CPU seconds, tokens and peak memory to out[stage]."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    _reset_peak_rss()
    before = {what: lm.total(what) for what in ("tokens_generated", "tokens_forwarded")}
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    row = out.setdefault(stage, {"seconds": 0.0, "cpu_seconds": 0.0, "generated": 0, "forwarded": 0})
    row["seconds"] += time.perf_counter() - wall
    row["cpu_seconds"] += time.process_time() - cpu
    for key, what in (("generated", "tokens_generated"), ("forwarded", "tokens_forwarded")):
        row[key] += int(lm.total(what) - before[what])
    row["peak_rss_mb"] = max(row.get("peak_rss_mb", 0.0), _peak_rss_mb())
    if torch.cuda.is_available():
        row["peak_gpu_mb"] = max(row.get("peak_gpu_mb", 0.0), torch.cuda.max_memory_allocated() / 2**20)


def count(lm: LanguageModel, generated: int = 0, forwarded: int = 0) -> None:
    lm.count("tokens_generated", generated)
    lm.count("tokens_forwarded", forwarded)


# ---- the reference's way ------------------------------------------------------------------------
def hf_greedy(lm: LanguageModel, inputs: list[list[int]], max_new_tokens: int, use_cache: bool) -> list[list[int]]:
    """One left-padded batch through transformers' generate, greedy; counts its tokens."""
    batch = lm.pad(inputs)
    with torch.no_grad():
        out = lm.model.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            use_cache=use_cache,
            eos_token_id=sorted(lm.stop_ids),
            pad_token_id=lm.tokenizer.pad_token_id,
        )
    new = [until_stop(row, lm.stop_ids) for row in out[:, batch.input_ids.shape[1] :].tolist()]
    count(lm, sum(len(t) for t in new), int(batch.attention_mask.sum()))
    return new


def until_stop(tokens: list[int], stop_ids: set[int]) -> list[int]:
    """The tokens before the first stop token (what the model wrapper's own decoding returns)."""
    for n, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:n]
    return tokens


def uncached_generate(lm: LanguageModel, inputs: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """Greedy, left-padded, REFERENCE_BATCH at a time, every step re-reading the whole sequence."""
    outputs = []
    for start in range(0, len(inputs), REFERENCE_BATCH):
        outputs += hf_greedy(lm, inputs[start : start + REFERENCE_BATCH], max_new_tokens, use_cache=False)
    return outputs


def full_logits(lm: LanguageModel, sequences: list[list[int]]) -> torch.Tensor:
    """One no-grad forward with logits at every position: [B, L, V]."""
    batch = lm.pad(sequences)
    count(lm, forwarded=int(batch.attention_mask.sum()))
    with torch.no_grad():
        return lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits


def reference_rescore(lm: LanguageModel, scorer: PromptScorer, prompt: list[int], tokens: int) -> None:
    """One candidate: reasoning regenerated for each half of the examples, then a full-logit forward."""
    n = len(scorer.slots)
    for half in (range(0, (n + 1) // 2), range((n + 1) // 2, n)):
        slots = [scorer.slots[i] for i in half]
        if not slots:
            continue
        reasonings = uncached_generate(lm, [s.with_prompt(prompt) for s in slots], tokens)
        examples = [scorer.examples[i] for i in half]
        seqs, spans = answer_sequences(lm, scorer.task, examples, slots, prompt, reasonings)
        logits = full_logits(lm, seqs).float()  # [B, L, V], left-padded
        for k, (seq, (a, b)) in enumerate(zip(seqs, spans)):
            pad = logits.shape[1] - len(seq)
            rows = logits[k, pad + a - 1 : pad + b - 1]
            span_cross_entropy(rows, torch.tensor(seq[a:b], device=rows.device))
            bool((rows.argmax(-1) == torch.tensor(seq[a:b], device=rows.device)).all())


def reference_gradient(lm, seqs, spans, starts, prompt, j, control_weight, temperature) -> None:
    """One forward and backward per example, train mode, weight gradients on (and never zeroed)."""
    embed = lm.model.get_input_embeddings()
    lm.model.train().requires_grad_(True)
    try:
        for seq, (a, b), start in zip(seqs, spans, starts):
            ids = torch.tensor([seq], device=lm.device)
            base = embed(ids).detach()
            delta = torch.zeros(base.shape[-1], device=lm.device, dtype=base.dtype, requires_grad=True)
            inputs = base.clone()
            inputs[0, start + j] += delta
            logits = lm.model(inputs_embeds=inputs, use_cache=False).logits[0].float()  # every position
            count(lm, forwarded=len(seq))
            loss = span_cross_entropy(logits[a - 1 : b - 1], ids[0, a:b], temperature)
            if control_weight:
                end = start + len(prompt)
                loss = loss + control_weight * span_cross_entropy(logits[start - 1 : end - 1], ids[0, start:end])
            loss.backward()
            delta.grad.detach()
            del logits, loss
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    finally:
        lm.model.eval().requires_grad_(False)
        for p in lm.model.parameters():
            p.grad = None


def gradient_inputs(scorer: PromptScorer, plan: StepPlan, reasonings: list[list[int]]):
    """The sequences and answer spans the step's gradient reads: over the reasoning, or (the control
    gradient_over_reasoning=false) with the answer right after the question, as the engine takes it."""
    if not plan.settings.gradient_over_reasoning:
        reasonings = [[] for _ in reasonings]
    return scorer.sequences(plan.prompt, reasonings)


def reference_step(lm: LanguageModel, scorer: PromptScorer, plan: StepPlan, tokens: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    prompt, j, settings = plan.prompt, plan.position, plan.settings
    with measure(lm, out, "reasoning"):
        reasonings = uncached_generate(lm, [s.with_prompt(prompt) for s in scorer.slots], tokens)
        seqs, spans = gradient_inputs(scorer, plan, reasonings)
    starts = scorer.prompt_starts()
    with measure(lm, out, "proposal"):
        for seq, start in zip(seqs, starts):
            full_logits(lm, [seq])[0, start + j - 1].cpu()  # shipped to the main process in the reference
    with measure(lm, out, "gradient"):
        reference_gradient(lm, seqs, spans, starts, prompt, j, settings.control_weight, settings.answer_temperature)
    with measure(lm, out, "selection"):
        for candidate in plan.candidate_prompts():
            reference_rescore(lm, scorer, candidate, tokens)
    return out


# ---- the floor -------------------------------------------------------------------------------------
def floor_step(lm: LanguageModel, scorer: PromptScorer, plan: StepPlan, tokens: int) -> dict[str, dict]:
    """The step's tokens as bare batched calls: one cached generation, one forward, one forward+backward."""
    out: dict[str, dict] = {}
    prompts = [plan.prompt, *plan.candidate_prompts()]
    with measure(lm, out, "generation"):
        inputs = [s.with_prompt(p) for p in prompts for s in scorer.slots]
        reasonings = hf_greedy(lm, inputs, tokens, use_cache=True)
    n = len(scorer.slots)
    with measure(lm, out, "loss"):
        seqs, spans = [], []
        for i, p in enumerate(prompts):
            s, sp = scorer.sequences(p, reasonings[i * n : (i + 1) * n])
            seqs += s
            spans += sp
        with torch.no_grad():  # one padded batch: the model wrapper's own loss call, without its chunking
            lm.batch_span_losses(lm.pad(seqs), seqs, spans)
    with measure(lm, out, "gradient"):
        seqs, spans = gradient_inputs(scorer, plan, reasonings[:n])
        weight, temperature = plan.settings.control_weight, plan.settings.answer_temperature
        with one_loss_batch(lm, n):
            position_gradient(lm, seqs, spans, scorer.prompt_starts(), plan.prompt, plan.position, weight, temperature)
    return out


@contextmanager
def one_loss_batch(lm: LanguageModel, size: int) -> Iterator[None]:
    """The gradient over `size` sequences in one batch. position_gradient has no batch-size parameter, so
    this sets the model's loss batch for the call (the one place that does; the library should take it)."""
    previous, lm.loss_batch_size = lm.loss_batch_size, size
    try:
        yield
    finally:
        lm.loss_batch_size = previous

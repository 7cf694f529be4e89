"""The same GReaTer step computed three ways, for scripts/benchmark.py.

- ours: the engine's own `GreaterOptimizer.step` (its stages timed by the engine's own timer).
- reference: the work the reference implementation (psunlpgroup/GreaTer) does for that step, done its way:
  generation in batches of 9 with the key-value cache off (models load with use_cache=False), the proposal
  logits from one forward per example at every position, the gradient from one forward and backward per
  example in train mode with weight gradients on, and each candidate re-scored one at a time (its reasoning
  regenerated in two halves, then a forward with full logits).
- floor: the same tokens as bare batched model calls: one cached generation of every reasoning, one forward
  over every answer, one forward and backward for the gradient.

The reference and floor patterns take the prompt, position and re-scored candidates from ours, so all three
do the same tokens on the same inputs.
"""

from __future__ import annotations

import gc
import os
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from greater.engine.frame import answer_sequences
from greater.engine.gradient import position_gradient
from greater.engine.losses import span_cross_entropy
from greater.models.language_model import LanguageModel
from greater.optimizers.greater.objective import PromptScorer

REFERENCE_BATCH = 9  # the reference's generation batch (AM:873)


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
    before = dict(lm.counters)
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    row = out.setdefault(stage, {"seconds": 0.0, "cpu_seconds": 0.0, "generated": 0, "forwarded": 0})
    row["seconds"] += time.perf_counter() - wall
    row["cpu_seconds"] += time.process_time() - cpu
    for key, what in (("generated", "tokens_generated"), ("forwarded", "tokens_forwarded")):
        row[key] += int(lm.total(what) - sum(v for k, v in before.items() if k.endswith("." + what)))
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
    new = [lm._until_stop(row) for row in out[:, batch.input_ids.shape[1] :].tolist()]
    count(lm, sum(len(t) for t in new), int(batch.attention_mask.sum()))
    return new


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


def reference_step(lm: LanguageModel, scorer: PromptScorer, plan: dict, tokens: int) -> dict[str, dict]:
    """`plan`: prompt, position, candidates (the re-scored tokens), control_weight, answer_temperature."""
    out: dict[str, dict] = {}
    prompt, j = plan["prompt"], plan["position"]
    with measure(lm, out, "reasoning"):
        reasonings = uncached_generate(lm, [s.with_prompt(prompt) for s in scorer.slots], tokens)
        seqs, spans = scorer.sequences(prompt, reasonings)
    starts = scorer.prompt_starts()
    with measure(lm, out, "proposal"):
        for seq, start in zip(seqs, starts):
            full_logits(lm, [seq])[0, start + j - 1].cpu()  # shipped to the main process in the reference
    with measure(lm, out, "gradient"):
        reference_gradient(lm, seqs, spans, starts, prompt, j, plan["control_weight"], plan["answer_temperature"])
    with measure(lm, out, "selection"):
        for token in plan["candidates"]:
            reference_rescore(lm, scorer, prompt[:j] + [token] + prompt[j + 1 :], tokens)
    return out


# ---- the floor -------------------------------------------------------------------------------------
def floor_step(lm: LanguageModel, scorer: PromptScorer, plan: dict, tokens: int) -> dict[str, dict]:
    """The step's tokens as bare batched calls: one cached generation, one forward, one forward+backward."""
    out: dict[str, dict] = {}
    prompt, j = plan["prompt"], plan["position"]
    prompts = [prompt] + [prompt[:j] + [t] + prompt[j + 1 :] for t in plan["candidates"]]
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
        one_batch(lm, len(seqs), lambda: lm.span_losses(seqs, spans))
    with measure(lm, out, "gradient"):
        starts, weight, temperature = scorer.prompt_starts(), plan["control_weight"], plan["answer_temperature"]
        one_batch(lm, n, lambda: position_gradient(lm, seqs[:n], spans[:n], starts, prompt, j, weight, temperature))
    return out


def one_batch(lm: LanguageModel, size: int, fn: Callable[[], object]) -> None:
    previous, lm.loss_batch_size = lm.loss_batch_size, size
    try:
        fn()
    finally:
        lm.loss_batch_size = previous

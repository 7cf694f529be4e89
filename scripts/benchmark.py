"""Time one GReaTer step of a fixed size on the embedded model, stage by stage.

    python scripts/benchmark.py [--model smollm2-135m] [--n-train 8] [--tokens 64] [--repeats 3]

Prints one table (median seconds over repeats, tokens generated and forwarded, peak memory) and the
speed ratios of three design choices measured in the same run: generation with vs without the key-value
cache (the reference implementation switched it off); the gradient pass with logits only where a loss
reads them vs logits at every position; re-scoring the candidate prompts in one batch vs one by one.
Ratios, not absolute times, are what compare across machines.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from greater.config import TaskConfig
from greater.models.language_model import LanguageModel
from greater.models.registry import load_model_config
from greater.optimizers.gradient import position_gradient, rank_by_gradient
from greater.optimizers.greater import GreaterOptimizer
from greater.optimizers.proposal import allowed_token_mask, propose_candidates, sample_groups
from greater.optimizers.scoring import PromptScorer
from greater.optimizers.search_state import SearchState
from greater.tasks.base import Task
from greater.tasks.synthetic import load_synthetic

STAGES = ("reasoning", "gradient", "proposal", "selection")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def build(args) -> tuple[LanguageModel, Task]:
    lm = LanguageModel.from_config(load_model_config(args.model))
    cfg = TaskConfig(name="synthetic/compare_numbers", loader="synthetic", synthetic_size=args.n_train)
    examples = load_synthetic(cfg, seed=0)
    task = Task(
        "synthetic/compare_numbers",
        train=examples,
        test=[],
        extractor="Therefore, the final answer (a number) is",
        initial_prompt="Let's think step by step.",
    )
    return lm, task


def one_step(lm: LanguageModel, task: Task, opt: GreaterOptimizer, tokens: int, position: int) -> dict[str, dict]:
    """The stages of GreaterOptimizer.step, timed and counted one by one."""
    scorer = PromptScorer(lm, task, task.train, "after", tokens, opt.control_weight)  # fresh: nothing cached
    prompt = lm.encode(task.initial_prompt)
    state = SearchState(prompt_ids=prompt, initial_length=len(prompt), position=position)
    allowed = allowed_token_mask(lm.tokenizer)
    out: dict[str, dict] = {}

    def stage(name, fn):
        before = dict(lm.counters)
        t0 = time.perf_counter()
        value = fn()
        out[name] = {
            "seconds": time.perf_counter() - t0,
            "generated": lm.counters["tokens_generated"] - before.get("tokens_generated", 0),
            "forwarded": lm.counters["tokens_forwarded"] - before.get("tokens_forwarded", 0),
            "peak_rss_mb": peak_rss_mb(),
        }
        return value

    current = stage("reasoning", lambda: scorer.score(prompt))
    seqs, spans = scorer.sequences(prompt, current.reasonings)
    grad = stage("gradient", lambda: position_gradient(lm, seqs, spans, scorer.prompt_starts(), prompt, position, 0.2))

    def propose():
        groups = sample_groups(len(seqs), opt.group_size, opt.n_groups, random.Random(0))
        cands, _ = propose_candidates(grad.next_token_logits, groups, allowed, opt.topk, 2, 6, 200)
        return rank_by_gradient(lm, grad.grads, cands)

    ranked = stage("proposal", propose)
    stage("selection", lambda: opt.select(lm, scorer, state, ranked))
    return out


def ratio_kv_cache(lm: LanguageModel, task: Task, tokens: int) -> float:
    """Seconds without the key-value cache / seconds with it, for the same greedy batch."""
    scorer = PromptScorer(lm, task, task.train, "after", tokens)
    batch = lm.pad([slot.with_prompt(lm.encode(task.initial_prompt)) for slot in scorer.slots])
    times = {}
    for use_cache in (True, False):
        t0 = time.perf_counter()
        with torch.no_grad():
            lm.model.generate(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                do_sample=False,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                use_cache=use_cache,
                pad_token_id=lm.tokenizer.pad_token_id,
            )
        times[use_cache] = time.perf_counter() - t0
    return times[False] / times[True]


def ratio_all_logits(lm: LanguageModel, task: Task, tokens: int) -> float:
    """Seconds of forward+backward with logits at every position / with logits only where needed."""
    scorer = PromptScorer(lm, task, task.train, "after", tokens)
    prompt = lm.encode(task.initial_prompt)
    seqs, spans = scorer.sequences(prompt, scorer.score(prompt).reasonings)
    t0 = time.perf_counter()
    position_gradient(lm, seqs, spans, scorer.prompt_starts(), prompt, 2, 0.2)
    needed = time.perf_counter() - t0
    original = lm.logits_at
    lm.logits_at = lambda batch, positions, embeds=None: original(
        batch, torch.arange(batch.input_ids.shape[1]), embeds
    )[:, positions]
    t0 = time.perf_counter()
    position_gradient(lm, seqs, spans, scorer.prompt_starts(), prompt, 2, 0.2)
    everything = time.perf_counter() - t0
    lm.logits_at = original
    return everything / needed


def ratio_batched_rescoring(lm: LanguageModel, task: Task, tokens: int, n_prompts: int = 3) -> float:
    """Seconds to re-score `n_prompts` candidate prompts one after another / all in one batched generation."""
    base = lm.encode(task.initial_prompt)
    prompts = [base[:-1] + [token] for token in lm.encode(" now again here")[:n_prompts]]
    t0 = time.perf_counter()
    for prompt in prompts:
        PromptScorer(lm, task, task.train, "after", tokens).score(prompt)
    one_by_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    PromptScorer(lm, task, task.train, "after", tokens).score_many(prompts)
    return one_by_one / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n-train", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64, help="max reasoning tokens")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    lm, task = build(args)
    opt = GreaterOptimizer(topk=10, n_groups=3, group_size=4, n_rescore=3)
    runs = [one_step(lm, task, opt, args.tokens, position=2) for _ in range(args.repeats)]

    print(
        f"\nOne GReaTer step: {args.model}, {args.n_train} training examples, <= {args.tokens} reasoning tokens, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'stage':<11}{'seconds':>9}{'tok generated':>15}{'tok forwarded':>15}{'tok/s':>8}{'peak RSS MB':>13}")
    total = 0.0
    for name in STAGES:
        sec = statistics.median(r[name]["seconds"] for r in runs)
        gen = runs[-1][name]["generated"]
        fwd = runs[-1][name]["forwarded"]
        rate = (gen or fwd) / sec if sec else 0.0
        total += sec
        print(f"{name:<11}{sec:>9.2f}{gen:>15}{fwd:>15}{rate:>8.0f}{runs[-1][name]['peak_rss_mb']:>13.0f}")
    print(f"{'step':<11}{total:>9.2f}")
    kv = statistics.median(ratio_kv_cache(lm, task, 32) for _ in range(args.repeats))
    logits = statistics.median(ratio_all_logits(lm, task, args.tokens) for _ in range(args.repeats))
    print(f"\nratio, generation without / with key-value cache (32 tokens): {kv:.2f}x")
    print(f"ratio, gradient pass with all logits / logits only where read: {logits:.2f}x")
    batched = statistics.median(ratio_batched_rescoring(lm, task, args.tokens) for _ in range(args.repeats))
    print(f"ratio, re-scoring 3 candidates one at a time / in one batch (batch size {lm.batch_size}): {batched:.2f}x")


if __name__ == "__main__":
    main()

"""The GPU acceptance check: one GReaTer step at the paper's settings on random-weight paper models.

    python scripts/gpu_check.py                       # gemma2-9b and llama3-8b, bfloat16, on cuda
    python scripts/gpu_check.py --reference           # also the reference's compute pattern, for the speed-up
    python scripts/gpu_check.py --tiny                # the same checks on the CPU with shrunk models (a test)

Each model is built from its shipped architecture (greater/models/configs/) with seeded random weights,
straight on the device (model.source=random; nothing comes from the network), with the paper protocol:
experiment=paper_bbh's task format for the model's family, no system turn, 50 training examples, up to 1,024
reasoning tokens, the logged top-k (model.paper_topk) and 3 re-scored candidates. Random weights never stop
early, so every rollout runs the full 1,024 tokens: the worst case of a real step. Then the step again with a
forced out-of-memory: the gradient pass's first batch of more than one row raises torch.OutOfMemoryError, and
the batch planner must halve it, remember the smaller size, and end the step as the unforced one ended
(the reasonings are the first step's, cached: only the gradient, proposal and selection run again). Prints
the stage table (seconds, tokens, peak memory) and one verdict line per check; writes everything to --json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PAPER = {"n_train": 50, "tokens": 1024, "n_rescore": 3}
TINY_RUN = {"n_train": 3, "tokens": 8, "n_rescore": 3}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gemma2-9b", "llama3-8b"], help="conf/model/ names")
    parser.add_argument("--device", default=None, help="cuda (default), cuda:N, or cpu (the --tiny default)")
    parser.add_argument("--dtype", default=None, help="bfloat16 (default; float32 under --tiny)")
    parser.add_argument("--tiny", action="store_true", help="shrunk models, few examples and tokens: a CPU test")
    parser.add_argument("--reference", action="store_true", help="also time the reference's pattern of the step")
    parser.add_argument("--task", default="bbh/navigate")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="where bbh/ lives")
    parser.add_argument("--n-train", type=int, default=None, help="training examples (paper: 50)")
    parser.add_argument("--tokens", type=int, default=None, help="max reasoning tokens (paper: 1024)")
    parser.add_argument("--cache-dir", default="~/.cache/greater", help="where the borrowed tokenizer is kept")
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args(argv)
    run = TINY_RUN if args.tiny else PAPER
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    args.dtype = args.dtype or ("float32" if args.tiny else "bfloat16")
    args.n_train = args.n_train or run["n_train"]
    args.tokens = args.tokens or run["tokens"]
    return args


def cuda_missing(device: str) -> str | None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        return f"gpu_check: --device {device} but torch sees no CUDA device here; run `--tiny` for the CPU check"
    return None


def paper_task(args, cfg):
    """The paper's BBH protocol for this model family; a generated task when the BBH files are absent."""
    from greater.api import load_task

    bbh = Path(args.data_dir).expanduser() / "bbh"
    fields = {"split": "paper", "n_train": args.n_train, "n_dev": 0, "n_test": 1}
    if bbh.is_dir():
        style = str(cfg.reference_style)
        return load_task(args.task, data_dir=args.data_dir, answer_format="reference", reference_style=style, **fields)
    print(f"gpu_check: no {bbh}: using synthetic/word_problem (BBH questions are longer)")
    return load_task("synthetic/word_problem", synthetic_size=args.n_train + 20, **fields)


def load(name: str, args):
    """(LanguageModel, model config, seconds): the random-weight architecture built on the device."""
    from greater.models.architectures import TINY
    from greater.models.language_model import LanguageModel
    from greater.models.random_weights import build
    from greater.models.registry import load_model_config
    from greater.models.system_turn import without_system_turn

    cfg = load_model_config(name)
    started = time.perf_counter()
    shrink = TINY if args.tiny else {}
    cache = Path(args.cache_dir).expanduser()
    model, tokenizer = build(cfg.path, shrink, cfg.random_seed, args.dtype, cache, device=args.device)
    tokenizer.chat_template = without_system_turn(tokenizer)  # experiment=paper_*: model.system_turn=false
    lm = LanguageModel(
        model,
        tokenizer,
        name,
        batch_size=cfg.batch_size,
        loss_batch_size=cfg.loss_batch_size,
        prefix_cache_mb=cfg.prefix_cache_mb,
    )
    return lm, cfg, time.perf_counter() - started


def check_model(name: str, args) -> dict:
    import torch

    from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
    from recipes.benchmark import fresh_scorer, total, without_store

    class CountingOptimizer(GreaterOptimizer):
        rescored = 0

        ranked_ids: tuple[int, ...] = ()
        record = None  # the last step's

        def select(self, lm, scorer, state, ranked):  # the engine's selection, noting what it ranked and re-scored
            chosen, rescored = super().select(lm, scorer, state, ranked)
            self.rescored, self.ranked_ids = len(rescored), tuple(token for token, _ in ranked)
            return chosen, rescored

        def step(self, run):
            self.record = super().step(run)
            return self.record

    from recipes.benchmark import ours_step as engine_step
    from recipes.patterns import reference_step

    lm, cfg, load_seconds = load(name, args)
    task = paper_task(args, cfg)
    opt = CountingOptimizer(GreaterConfig(topk=cfg.paper_topk, n_rescore=PAPER["n_rescore"]))
    stages, plan, scorer = engine_step(lm, task, opt, args.tokens, position=0)
    reasonings = scorer.score(plan.prompt).reasonings  # cached by the step: no new rollouts
    out: dict = {
        "model": name,
        "architecture": cfg.path,
        "parameters": sum(p.numel() for p in lm.model.parameters()),
        "vocab_rows": lm.model.config.vocab_size,
        "tokenizer_tokens": len(lm.tokenizer),
        "load_seconds": load_seconds,
        "topk": cfg.paper_topk,
        "stages": stages,
        "rescored": opt.rescored,
        # the largest id proposed or generated: the rows past the tokenizer must never appear
        "max_token_id": max([*opt.ranked_ids, *(t for r in reasonings for t in r)]),
    }
    generated = sum(row["generated"] for row in stages.values())
    decode_seconds = sum(stages[s]["seconds"] for s in ("reasoning", "selection") if s in stages)
    out["step_seconds"] = total(stages)
    out["tokens_per_second"] = generated / decode_seconds if decode_seconds else 0.0
    out["peak_memory_mb"] = max(row.get("peak_gpu_mb", row["peak_rss_mb"]) for row in stages.values())
    if args.reference:
        with without_store(lm):
            ref = reference_step(lm, fresh_scorer(lm, task, opt, args.tokens), plan, args.tokens)
        out["reference_stages"] = ref
        out["speedup_vs_reference"] = total(ref) / out["step_seconds"]
    unforced = opt.record
    out["oom_backoff"] = forced_out_of_memory_step(lm, task, opt, scorer, unforced)
    out["checks"] = verdicts(out, lm, args)
    del lm
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


@contextmanager
def out_of_memory_once(lm) -> Iterator[list[int]]:
    """The model's first differentiable forward over more than one row (the gradient pass: every other pass
    runs without gradients) raises torch.OutOfMemoryError before it computes anything, as a card too small for
    it would. Yields the rows of every differentiable forward, the refused one first."""
    import torch

    forward, rows = lm.model.forward, []

    def limited(*args, **kwargs):
        x = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs.get("inputs_embeds")
        if torch.is_grad_enabled() and x is not None:
            rows.append(x.shape[0])
            if len(rows) == 1 and x.shape[0] > 1:
                raise torch.OutOfMemoryError(f"CUDA out of memory (forced by gpu_check on {x.shape[0]} rows)")
        return forward(*args, **kwargs)

    lm.model.forward = limited
    try:
        yield rows
    finally:
        lm.model.forward = forward


def forced_out_of_memory_step(lm, task, opt, scorer, unforced) -> dict:
    """The step again from the same prompt and random stream on the first step's scorer (its reasonings are
    cached), the gradient pass's first batch refused, the planner's memory of that pass forgotten first so
    the batch starts at model.loss_batch_size. Compares the step's result with the unforced one's."""
    from greater.optimizers.greater.candidates import allowed_token_mask
    from greater.optimizers.greater.optimizer import GreaterRun
    from greater.optimizers.greater.state import SearchState

    learned = lm.memory.kinds.pop("gradient", None)
    prompt = lm.encode(task.initial_prompt)
    state = SearchState(prompt_ids=list(prompt), initial_length=len(prompt), position=0)
    run = GreaterRun(lm, scorer, state, allowed_token_mask(lm.tokenizer, opt.config.token_filter), random.Random(0))
    started = time.perf_counter()
    with out_of_memory_once(lm) as rows:
        forced = opt.step(run)
    memory = lm.memory.of("gradient")
    if learned is not None:  # what the unforced steps had learned stays for whatever runs next
        lm.memory.kinds["gradient"] = learned
    before, after = step_result(unforced), step_result(forced)
    return {
        "rows": rows,  # of each differentiable batch: the refused one, then the halves that ran
        "out_of_memory": memory.out_of_memory,
        "failed_tokens": memory.failed_tokens,  # the planner's memory: later batches hold at most half of it
        "seconds": time.perf_counter() - started,
        "same_result": {key: before[key] == after[key] for key in ("prompt", "candidates", "losses")},
        "max_gradient_score_difference": max(abs(a - b) for a, b in zip(before["scores"], after["scores"])),
    }


def step_result(record) -> dict:
    """What a step decided: the chosen prompt, the ranked candidates, their re-scored losses, their gradient
    scores (compared with a tolerance: a batch of other rows sums in another order)."""
    candidates = record.details["candidates"]
    return {
        "prompt": record.prompt,
        "candidates": [c["token_id"] for c in candidates],
        "losses": [c["train_loss"] for c in candidates],
        "scores": [c["gradient_score"] for c in candidates],
    }


def verdicts(out: dict, lm, args) -> list[dict]:
    """One line per check: what was asked of the step, and whether it held."""
    import torch

    stages = out["stages"]
    checks = []

    def check(what: str, ok: bool, detail: str) -> None:
        checks.append({"check": what, "ok": bool(ok), "detail": detail})

    device = str(lm.device)
    check("device", device.startswith(args.device.split(":")[0]), f"weights on {device} in {lm.model.dtype}")
    check(
        "stages",
        all(s in stages for s in ("reasoning", "gradient", "proposal", "selection")),
        ", ".join(f"{s} {row['seconds']:.1f}s" for s, row in stages.items()),
    )
    # Random weights never stop: every rollout of the current prompt runs the full reasoning length.
    reasoning = stages.get("reasoning", {}).get("generated", 0)
    check(
        "reasoning length",
        reasoning >= args.n_train * args.tokens * 0.9,
        f"{reasoning} tokens for {args.n_train} examples x {args.tokens}",
    )
    rescored = f"{out['rescored']} candidates re-scored at top-k {out['topk']}"
    check("rescored", out["rescored"] == PAPER["n_rescore"], rescored)
    check(
        "vocabulary",
        out["max_token_id"] < out["tokenizer_tokens"],
        f"{out['vocab_rows']} output rows, {out['tokenizer_tokens']} tokens, largest id used {out['max_token_id']}",
    )
    if torch.cuda.is_available() and device.startswith("cuda"):
        capacity = torch.cuda.get_device_properties(lm.device).total_memory / 2**20
        check("memory", out["peak_memory_mb"] < capacity, f"peak {out['peak_memory_mb']:.0f} of {capacity:.0f} MB")
    check("out-of-memory back-off", *backoff_verdict(out["oom_backoff"]))
    return checks


def backoff_verdict(oom: dict) -> tuple[bool, str]:
    """Whether the refused gradient batch was halved, remembered, and the step ended as without the refusal."""
    rows = oom["rows"]
    if not rows or rows[0] < 2:
        return False, f"no gradient batch of two or more rows to refuse (rows {rows}): raise model.loss_batch_size"
    halved = len(rows) > 1 and max(rows[1:]) <= rows[0] // 2
    remembered = oom["out_of_memory"] == 1 and oom["failed_tokens"] is not None
    differs = [key for key, same in oom["same_result"].items() if not same]
    result = f"differs in {', '.join(differs)}" if differs else "the same prompt, candidates and losses"
    detail = (
        f"a gradient batch of {rows[0]} rows refused, run as {rows[1:]}; the planner keeps batches at half "
        f"its {oom['failed_tokens']} tokens; {result} as the unforced step (gradient scores within "
        f"{oom['max_gradient_score_difference']:.1e})"
    )
    return halved and remembered and not differs, detail


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    missing = cuda_missing(args.device)
    if missing:
        print(missing)
        return 2
    import torch

    from recipes.benchmark import print_table

    torch.manual_seed(0)
    report = {"settings": {k: str(v) for k, v in vars(args).items()}, "torch": torch.__version__, "models": []}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    ok = True
    for name in args.models:
        result = check_model(name, args)
        report["models"].append(result)
        size = f"{result['parameters'] / 1e9:.2f}B parameters"
        print_table(f"{name} ({result['architecture']}, {size})", result["stages"])
        print(f"tokens/s {result['tokens_per_second']:.0f}   peak memory {result['peak_memory_mb']:.0f} MB")
        if "speedup_vs_reference" in result:  # a measurement, not a verdict: tiny CPU models say little about it
            print(f"speed-up vs the reference's pattern of the step: {result['speedup_vs_reference']:.2f}x")
        for c in result["checks"]:
            print(f"{'PASS' if c['ok'] else 'FAIL'} {name} {c['check']}: {c['detail']}")
            ok &= c["ok"]
    report["ok"] = ok
    args.json.write_text(json.dumps(report, indent=2))
    print(f"{'PASS' if ok else 'FAIL'} gpu_check: {len(args.models)} model(s); details in {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

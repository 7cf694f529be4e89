"""Time one GReaTer step the engine's way and the reference implementation's way, in one process.

    python scripts/benchmark.py --tokens 128 --pattern reference floor --json out.json

Runs the engine's own `GreaterOptimizer.step` ("ours"), then the same step on the same inputs and token
counts as the reference code computes it ("reference") and as bare batched model calls ("floor"); see
scripts/patterns.py. Prints one table per pattern (median seconds over repeats, CPU seconds, tokens, peak
memory per stage) and the ratios; with --json writes {"speedup_vs_reference", "ratio_to_floor",
"selection_vs_scratch", "selection_reuse_vs_scratch", "equal_results", "stages", "settings"}. It also
re-scores the step's candidates three ways: from scratch (full generation, then full forward passes for the
answer and the fluency term), as the engine does (answers read from the generation's cache, shared
prefixes), and as the engine does with reasoning reuse on; and checks all three find the same rollouts.
Ratios, not absolute times, are what compare across machines.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from greater.engine.prefix_store import PrefixStore
from greater.models.language_model import LanguageModel
from greater.optimizers.base import OptimizationContext
from greater.optimizers.greater.candidates import allowed_token_mask
from greater.optimizers.greater.objective import PromptScorer
from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer, GreaterRun
from greater.optimizers.greater.state import SearchState
from greater.tasks.base import Task
from scripts.patterns import floor_step, measure, reference_step

PATTERNS = ("ours", "reference", "floor")


def ours_step(lm: LanguageModel, task: Task, opt: GreaterOptimizer, tokens: int, position: int):
    """The engine's step on a fresh scorer (nothing cached), its stages measured at the engine's own timer.
    Returns (stages, plan): the plan (prompt, position, re-scored candidates) drives the other patterns."""
    context = OptimizationContext.create(lm, task, max_reasoning_tokens=tokens)
    stages: dict[str, dict] = {}
    lm.prefixes = empty_store(lm)
    with measure(lm, stages, "prefixes"):  # the questions' chat into the prefix store: once per run
        scorer = PromptScorer(context.scorer, task.train, opt.config.control_weight)
    prompt = lm.encode(task.initial_prompt)
    state = SearchState(prompt_ids=list(prompt), initial_length=len(prompt), position=position)
    allowed = allowed_token_mask(lm.tokenizer, opt.config.token_filter)

    run = GreaterRun(lm, scorer, state, allowed, random.Random(0))
    opt.stages.hook = lambda stage: measure(lm, stages, stage)  # the engine's stage boundaries, metered
    try:
        record = opt.step(run)
    finally:
        opt.stages.hook = None
    rescored = [c["token_id"] for c in record.details["candidates"] if c["train_loss"] is not None]
    plan = {
        "prompt": prompt,
        "position": position,
        "candidates": [t for t in rescored if t != prompt[position]],
        "control_weight": opt.config.control_weight,
        "answer_temperature": getattr(opt, "answer_temperature", 1.0),
    }
    return stages, plan, scorer


def empty_store(lm: LanguageModel) -> PrefixStore | None:
    return PrefixStore(lm.prefixes.max_bytes) if lm.prefixes is not None else None


@contextmanager
def without_store(lm: LanguageModel) -> Iterator[None]:
    """The other patterns run as the reference and the engine before it did: no prefix store."""
    store, lm.prefixes = lm.prefixes, None
    try:
        yield
    finally:
        lm.prefixes = store


def candidates_of(plan: dict) -> list[list[int]]:
    prompt, j = plan["prompt"], plan["position"]
    return [prompt[:j] + [t] + prompt[j + 1 :] for t in plan["candidates"]]


def selection_engine(lm: LanguageModel, task: Task, opt: GreaterOptimizer, plan: dict, tokens: int, reuse: bool):
    """CPU seconds for the engine to re-score the plan's candidates (the current prompt's rollouts cached),
    and what it found: (reasonings, correct) per candidate."""
    lm.prefixes = empty_store(lm)
    scorer = fresh_scorer(lm, task, opt, tokens)  # fills the store, as the step before re-scoring did
    scorer.shared.reuse_reasoning = reuse
    scorer.score(plan["prompt"])
    t0 = time.process_time()  # CPU seconds: the runs happen minutes apart, under different loads
    scores = scorer.score_many(candidates_of(plan))
    return time.process_time() - t0, [(s.reasonings, s.correct) for s in scores]


def selection_from_scratch(lm: LanguageModel, task: Task, opt: GreaterOptimizer, plan: dict, tokens: int):
    """The same re-scoring as the engine did before it read answers from the generation's cache: every
    candidate's reasoning generated from its full input, then one forward over each whole sequence for the
    answer and one over each question and prompt for the fluency term."""
    scorer = fresh_scorer(lm, task, opt, tokens)
    slots = scorer.slots
    t0 = time.process_time()
    found = []
    prompts = candidates_of(plan)
    flat = lm.generate([slot.with_prompt(p) for p in prompts for slot in slots], tokens)
    for k, prompt in enumerate(prompts):
        reasonings = flat[k * len(slots) : (k + 1) * len(slots)]
        sequences, spans = scorer.sequences(prompt, reasonings)
        _, exact = lm.span_losses(sequences, spans)
        if opt.config.control_weight:
            heads = [slot.before + prompt for slot in slots]
            lm.span_losses(heads, [(len(slot.before), len(slot.before) + len(prompt)) for slot in slots])
        found.append((reasonings, exact.tolist()))
    return time.process_time() - t0, found


def fresh_scorer(lm: LanguageModel, task: Task, opt: GreaterOptimizer, tokens: int) -> PromptScorer:
    context = OptimizationContext.create(lm, task, max_reasoning_tokens=tokens)
    return PromptScorer(context.scorer, task.train, opt.config.control_weight)


def run_patterns(lm, task, opt, args) -> dict:
    """Every requested pattern, `repeats` times each; medians per stage."""
    runs: dict[str, list[dict]] = {p: [] for p in args.pattern}
    scratch, engine, reused, equal = [], [], [], True
    for _ in range(args.repeats):
        stages, plan, _ = ours_step(lm, task, opt, args.tokens, args.position)
        runs["ours"].append(stages)
        for pattern, step in (("reference", reference_step), ("floor", floor_step)):
            if pattern in runs:
                with without_store(lm):
                    runs[pattern].append(step(lm, fresh_scorer(lm, task, opt, args.tokens), plan, args.tokens))
        if plan["candidates"]:
            with without_store(lm):
                t_scratch, from_scratch = selection_from_scratch(lm, task, opt, plan, args.tokens)
            t_engine, by_engine = selection_engine(lm, task, opt, plan, args.tokens, reuse=False)
            t_reuse, with_reuse = selection_engine(lm, task, opt, plan, args.tokens, reuse=True)
            scratch.append(t_scratch)
            engine.append(t_engine)
            reused.append(t_reuse)
            equal &= from_scratch == by_engine == with_reuse
    return {"runs": runs, "scratch": scratch, "engine": engine, "reused": reused, "equal": equal, "plan": plan}


def medians(runs: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for stage in runs[0]:
        rows = [r[stage] for r in runs if stage in r]
        out[stage] = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    return out


def total(stages: dict[str, dict], key: str = "seconds") -> float:
    return sum(row[key] for row in stages.values())


def print_table(name: str, stages: dict[str, dict]) -> None:
    print(f"\n{name}")
    gpu = any("peak_gpu_mb" in row for row in stages.values())
    head = f"{'stage':<12}{'seconds':>9}{'cpu s':>9}{'generated':>11}{'forwarded':>11}{'peak RSS MB':>13}"
    print(head + (f"{'peak GPU MB':>13}" if gpu else ""))
    for stage, row in stages.items():
        line = f"{stage:<12}{row['seconds']:>9.2f}{row['cpu_seconds']:>9.2f}{row['generated']:>11.0f}"
        line += f"{row['forwarded']:>11.0f}{row['peak_rss_mb']:>13.0f}"
        print(line + (f"{row.get('peak_gpu_mb', 0):>13.0f}" if gpu else ""))
    print(f"{'step':<12}{total(stages):>9.2f}{total(stages, 'cpu_seconds'):>9.2f}")


def summarize(result: dict, args, lm: LanguageModel) -> dict:
    stages = {p: medians(r) for p, r in result["runs"].items()}
    ours = total(stages["ours"])
    summary: dict = {"stages": stages}
    ours_cpu = total(stages["ours"], "cpu_seconds")
    if "reference" in stages:
        summary["speedup_vs_reference"] = total(stages["reference"]) / ours
        # CPU seconds: the fairer clock when other jobs share the machine and wall time drifts with their load
        summary["speedup_vs_reference_cpu"] = total(stages["reference"], "cpu_seconds") / ours_cpu
        # After a run's first step the current prompt's rollouts are cached (it was a candidate the step before),
        # so the engine's reasoning stage costs nothing; the reference regenerates them every step (AM:1382).
        # The prefix store is filled once per run.
        once = [stages["ours"][s] for s in ("reasoning", "prefixes") if s in stages["ours"]]
        steady = ours - sum(row["seconds"] for row in once)
        steady_cpu = ours_cpu - sum(row["cpu_seconds"] for row in once)
        summary["speedup_vs_reference_steady"] = total(stages["reference"]) / steady
        summary["speedup_vs_reference_steady_cpu"] = total(stages["reference"], "cpu_seconds") / steady_cpu
    if "floor" in stages:
        summary["ratio_to_floor"] = ours / total(stages["floor"])
        summary["ratio_to_floor_cpu"] = ours_cpu / total(stages["floor"], "cpu_seconds")
    if result["scratch"]:
        median = {key: statistics.median(result[key]) for key in ("scratch", "engine", "reused")}
        summary["selection_vs_scratch"] = median["engine"] / median["scratch"]
        summary["selection_reuse_vs_scratch"] = median["reused"] / median["scratch"]
        summary["selection_cpu_seconds"] = median
    summary["equal_results"] = result["equal"]
    summary["settings"] = {
        "model": args.model,
        "task": args.task,
        "n_train": args.n_train,
        "tokens": args.tokens,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "device": str(lm.device),
        "dtype": str(lm.model.dtype),
        "candidates": len(result["plan"]["candidates"]),
    }
    return summary


def report(summary: dict) -> None:
    s = summary["settings"]
    print(
        f"One GReaTer step: {s['model']} on {s['device']} ({s['dtype']}), {s['task']}, {s['n_train']} examples, "
        f"<= {s['tokens']} reasoning tokens, {s['candidates']} candidates re-scored, {s['threads']} threads, "
        f"median of {s['repeats']}"
    )
    for pattern, stages in summary["stages"].items():
        print_table(pattern, stages)
    print()
    if "speedup_vs_reference" in summary:
        print(
            f"speed-up vs the reference's compute pattern: {summary['speedup_vs_reference']:.1f}x wall, "
            f"{summary['speedup_vs_reference_cpu']:.1f}x CPU seconds (a run's first step); "
            f"{summary['speedup_vs_reference_steady']:.1f}x wall, {summary['speedup_vs_reference_steady_cpu']:.1f}x "
            "CPU seconds (every later step: the current prompt's rollouts are cached)"
        )
    if "ratio_to_floor" in summary:
        print(
            f"ours / floor (bare batched calls, same tokens): {summary['ratio_to_floor']:.2f} wall, "
            f"{summary['ratio_to_floor_cpu']:.2f} CPU seconds"
        )
    if "selection_vs_scratch" in summary:
        print(
            f"re-scoring the candidates, engine / from scratch (CPU s): {summary['selection_vs_scratch']:.2f}; "
            f"with reasoning reuse on: {summary['selection_reuse_vs_scratch']:.2f} "
            f"(same reasonings and answers all three ways: {summary['equal_results']})"
        )


def load(args) -> tuple[LanguageModel, Task]:
    from greater.api import load_task
    from greater.models.registry import load_model_config

    cfg = load_model_config(args.model)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device here; run without it for the CPU")
        cfg.device = args.device
        cfg.dtype = args.dtype or "auto"
    elif args.dtype:
        cfg.dtype = args.dtype
    lm = LanguageModel.from_config(cfg)
    task = load_task(args.task, data_dir=args.data_dir, n_train=args.n_train)
    return lm, task


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="synthetic/compare_numbers")
    parser.add_argument("--data-dir", default=None, help="where bbh/, gsm8k/, folio/ live (for real tasks)")
    parser.add_argument("--n-train", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128, help="max reasoning tokens")
    parser.add_argument("--position", type=int, default=2, help="prompt position the step optimizes")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--pattern",
        nargs="+",
        choices=PATTERNS,
        default=["reference", "floor"],
        help="patterns to compare with ours (ours and floor always run)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N when a GPU is present")
    parser.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 | auto (cuda default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = parser.parse_args(argv)
    # ours always runs, and so does the floor: it is the yardstick every ratio_to_floor needs
    args.pattern = ["ours"] + [p for p in dict.fromkeys([*args.pattern, "floor"]) if p != "ours"]
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lm, task = load(args)
    summary = summarize(run_patterns(lm, task, GreaterOptimizer(GreaterConfig()), args), args, lm)
    report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()

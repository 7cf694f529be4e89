"""One GReaTer step timed three ways on the same inputs (scripts/benchmark.py is the recipe over this).

`ours_step` runs the engine's own `GreaterOptimizer.step` and returns the `StepPlan` it took; the reference
and floor patterns (recipes.patterns) redo that plan. `run_patterns` also re-scores the step's
candidates three ways (from scratch, as the engine does, and with reasoning reuse on) and checks that all
three find the same rollouts; `summarize` turns the runs into the ratios the README quotes.
"""

from __future__ import annotations

import itertools
import platform
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from greater.engine.kernels import transformers_kernels
from greater.engine.prefix_store import PrefixStore
from greater.lifecycle.context import context_for
from greater.models.language_model import LanguageModel
from greater.optimizers.greater.candidates import allowed_token_mask
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.objective import PromptScorer
from greater.optimizers.greater.optimizer import GreaterOptimizer, GreaterRun
from greater.optimizers.greater.state import SearchState
from greater.tasks.base import Task
from recipes.patterns import EngineSettings, StepPlan, floor_step, measure, reference_step

PATTERNS = ("ours", "reference", "floor", "floor_kernels")


def ours_step(
    lm: LanguageModel, task: Task, opt: GreaterOptimizer, tokens: int, position: int
) -> tuple[dict[str, dict], StepPlan, PromptScorer]:
    """The engine's step on a fresh scorer (nothing cached), its stages measured at the engine's own
    boundaries. Returns (stages, plan, scorer): the plan drives the other patterns."""
    context = context_for(lm, task, max_reasoning_tokens=tokens)
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
    candidates = [t for t in rescored if t != prompt[position]]
    return stages, StepPlan(prompt, position, candidates, EngineSettings.of(opt.config)), scorer


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


def fresh_scorer(lm: LanguageModel, task: Task, opt: GreaterOptimizer, tokens: int) -> PromptScorer:
    context = context_for(lm, task, max_reasoning_tokens=tokens)
    return PromptScorer(context.scorer, task.train, opt.config.control_weight)


def selection_engine(lm: LanguageModel, task: Task, opt: GreaterOptimizer, plan: StepPlan, tokens: int, reuse: bool):
    """CPU seconds for the engine to re-score the plan's candidates (the current prompt's rollouts cached),
    and what it found: (reasonings, correct) per candidate."""
    lm.prefixes = empty_store(lm)
    scorer = fresh_scorer(lm, task, opt, tokens)  # fills the store, as the step before re-scoring did
    scorer.shared.reuse_reasoning = reuse
    scorer.score(plan.prompt)
    t0 = time.process_time()  # CPU seconds: the runs happen minutes apart, under different loads
    scores = scorer.score_many(plan.candidate_prompts())
    return time.process_time() - t0, [(s.reasonings, s.correct) for s in scores]


def selection_from_scratch(lm: LanguageModel, task: Task, opt: GreaterOptimizer, plan: StepPlan, tokens: int):
    """The same re-scoring as the engine did before it read answers from the generation's cache: every
    candidate's reasoning generated from its full input, then one forward over each whole sequence for the
    answer and one over each question and prompt for the fluency term."""
    scorer = fresh_scorer(lm, task, opt, tokens)
    slots = scorer.slots
    t0 = time.process_time()
    found = []
    prompts = plan.candidate_prompts()
    flat = lm.generate([slot.with_prompt(p) for p in prompts for slot in slots], tokens)
    for k, prompt in enumerate(prompts):
        reasonings = flat[k * len(slots) : (k + 1) * len(slots)]
        sequences, spans = scorer.sequences(prompt, reasonings)
        _, exact = lm.span_losses(sequences, spans)
        if plan.settings.control_weight:
            heads = [slot.before + prompt for slot in slots]
            lm.span_losses(heads, [(len(slot.before), len(slot.before) + len(prompt)) for slot in slots])
        found.append((reasonings, exact.tolist()))
    return time.process_time() - t0, found


def run_patterns(
    lm: LanguageModel,
    task: Task,
    opt: GreaterOptimizer,
    patterns: list[str],
    repeats: int,
    tokens: int,
    position: int,
    rescoring_check: bool = True,
) -> dict:
    """Every requested pattern, `repeats` times each; medians per stage come from `summarize`. With
    `rescoring_check`, the step's candidates are also re-scored three ways and their rollouts compared."""
    runs: dict[str, list[dict]] = {p: [] for p in patterns}
    scratch, by_engine, reused, equal = [], [], [], True
    for _ in range(repeats):
        stages, plan, _ = ours_step(lm, task, opt, tokens, position)
        runs["ours"].append(stages)
        for pattern, step in (("reference", reference_step), ("floor", floor_step), ("floor_kernels", floor_step)):
            if pattern in runs:
                # reference and floor: plain transformers calls; floor_kernels: the floor on ours' CPU kernels
                kernels = nullcontext() if pattern == "floor_kernels" else transformers_kernels(lm.model)
                with without_store(lm), kernels:
                    runs[pattern].append(step(lm, fresh_scorer(lm, task, opt, tokens), plan, tokens))
        if plan.candidates and rescoring_check:
            with without_store(lm):
                t_scratch, from_scratch = selection_from_scratch(lm, task, opt, plan, tokens)
            t_engine, engine_found = selection_engine(lm, task, opt, plan, tokens, reuse=False)
            t_reuse, with_reuse = selection_engine(lm, task, opt, plan, tokens, reuse=True)
            scratch.append(t_scratch)
            by_engine.append(t_engine)
            reused.append(t_reuse)
            equal &= from_scratch == engine_found == with_reuse
    return {"runs": runs, "scratch": scratch, "engine": by_engine, "reused": reused, "equal": equal, "plan": plan}


def medians(runs: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for stage in runs[0]:
        rows = [r[stage] for r in runs if stage in r]
        out[stage] = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    return out


def total(stages: dict[str, dict], key: str = "seconds") -> float:
    return sum(row[key] for row in stages.values())


def summarize(result: dict, lm: LanguageModel, settings: dict) -> dict:
    """The ratios, the per-stage medians and `settings` (what was run) with the plan's engine settings added."""
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
    if "floor_kernels" in stages:  # the engine's own work against the floor's, the kernels being equal
        summary["ratio_to_floor_kernels"] = ours / total(stages["floor_kernels"])
    if result["scratch"]:
        median = {key: statistics.median(result[key]) for key in ("scratch", "engine", "reused")}
        summary["selection_vs_scratch"] = median["engine"] / median["scratch"]
        summary["selection_reuse_vs_scratch"] = median["reused"] / median["scratch"]
        summary["selection_cpu_seconds"] = median
    summary["equal_results"] = result["equal"]
    plan: StepPlan = result["plan"]
    summary["settings"] = {
        **settings,
        "threads": torch.get_num_threads(),
        "device": str(lm.device),
        "dtype": str(lm.model.dtype),
        "processor": processor_name(),
        "cpu_kernels": vars(lm.kernels),  # ours only: the reference and floor patterns run transformers' own
        "candidates": len(plan.candidates),
        "engine": {k: str(v) if isinstance(v, str) else v for k, v in vars(plan.settings).items()},
    }
    return summary


def processor_name() -> str:
    """The CPU's model name (Linux), else platform's guess: kernels' speed differs by vendor, so figures name it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def report(summary: dict) -> None:
    s = summary["settings"]
    print(
        f"One GReaTer step: {s['model']} on {s['device']} ({s['dtype']}), {s['task']}, {s['n_train']} examples, "
        f"<= {s['tokens']} reasoning tokens, {s['candidates']} candidates re-scored, {s['threads']} threads, "
        f"median of {s['repeats']}; answer temperature {s['engine']['answer_temperature']}, control weight "
        f"{s['engine']['control_weight']} (the optimizer's config, every pattern)"
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
    if "ratio_to_floor_kernels" in summary:
        print(f"ours / floor on the same CPU kernels as ours: {summary['ratio_to_floor_kernels']:.2f} wall")
    if "selection_vs_scratch" in summary:
        print(
            f"re-scoring the candidates, engine / from scratch (CPU s): {summary['selection_vs_scratch']:.2f}; "
            f"with reasoning reuse on: {summary['selection_reuse_vs_scratch']:.2f} "
            f"(same reasonings and answers all three ways: {summary['equal_results']})"
        )


# ---- the scaling table (--sweep) --------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """The sweep's axes. By default each axis is varied on its own around the centre (the benchmark's
    defaults: 128 tokens, 8 examples, 3 re-scored), at every thread count, which shows how each figure grows
    with one kind of work; `full` takes every combination instead (hours at 512 tokens and 32 examples)."""

    threads: tuple[int, ...] = (1, 2)
    tokens: tuple[int, ...] = (64, 128, 512)
    n_train: tuple[int, ...] = (4, 8, 32)
    n_rescore: tuple[int, ...] = (3, 6)
    full: bool = False

    CENTRE = (128, 8, 3)  # tokens, n_train, n_rescore: the single benchmark's defaults

    def points(self) -> list[tuple[int, int, int, int]]:
        axes = (self.tokens, self.n_train, self.n_rescore)
        if self.full:
            return list(itertools.product(self.threads, *axes))
        centre = tuple(c if c in axis else axis[0] for c, axis in zip(self.CENTRE, axes))
        work = [centre]
        for k, axis in enumerate(axes):
            work += [centre[:k] + (value,) + centre[k + 1 :] for value in axis if value != centre[k]]
        return [(threads, *point) for threads in self.threads for point in work]


def sweep_row(summary: dict, threads: int, tokens: int, n_train: int, n_rescore: int) -> dict:
    """One point of the scaling table from its summary: first and later steps of ours, the floor and the
    reference (None when skipped), wall and CPU seconds, tokens per second, peak memory."""
    stages = summary["stages"]
    ours = stages["ours"]
    once = [ours[s] for s in ("reasoning", "prefixes") if s in ours]
    generated = sum(row["generated"] for row in ours.values())
    row = {"threads": threads, "tokens": tokens, "n_train": n_train, "n_rescore": n_rescore}
    row["candidates"] = summary["settings"]["candidates"]
    row["ours_first_s"], row["ours_first_cpu_s"] = total(ours), total(ours, "cpu_seconds")
    row["ours_later_s"] = row["ours_first_s"] - sum(r["seconds"] for r in once)
    row["ours_later_cpu_s"] = row["ours_first_cpu_s"] - sum(r["cpu_seconds"] for r in once)
    row["ours_tokens_per_s"] = generated / row["ours_first_s"] if row["ours_first_s"] else 0.0
    later_generated = generated - sum(r["generated"] for r in once)
    row["ours_later_tokens_per_s"] = later_generated / row["ours_later_s"] if row["ours_later_s"] else 0.0
    for pattern in ("floor", "reference"):
        present = pattern in stages
        row[f"{pattern}_s"] = total(stages[pattern]) if present else None
        row[f"{pattern}_cpu_s"] = total(stages[pattern], "cpu_seconds") if present else None
    row["peak_rss_mb"] = max(r["peak_rss_mb"] for stages_of in stages.values() for r in stages_of.values())
    return row


def sweep(
    lm: LanguageModel,
    task_of: Callable[[int], Task],
    grid: Grid,
    with_reference: bool,
    repeats: int = 1,
    position: int = 2,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Every point of the grid (the reference pattern only `with_reference`: it takes minutes a point); torch's
    thread count is set per point and restored after. `on_row` sees each row as it is done."""
    patterns = ["ours", "floor"] + (["reference"] if with_reference else [])
    rows, before, tasks = [], torch.get_num_threads(), {}
    try:
        for threads, tokens, n_train, n_rescore in grid.points():
            torch.set_num_threads(threads)
            task = tasks.setdefault(n_train, task_of(n_train))
            opt = GreaterOptimizer(GreaterConfig(n_rescore=n_rescore))
            result = run_patterns(lm, task, opt, patterns, repeats, tokens, position, rescoring_check=False)
            summary = summarize(result, lm, {"tokens": tokens, "n_train": n_train, "repeats": repeats})
            rows.append(sweep_row(summary, threads, tokens, n_train, n_rescore))
            if on_row is not None:
                on_row(rows[-1])
    finally:
        torch.set_num_threads(before)
    return rows


def thread_speedups(rows: list[dict]) -> dict[tuple[int, int, int], float]:
    """Per (tokens, n_train, n_rescore): ours' first-step wall seconds at the fewest threads over those at the
    most (the second core's gain); only points measured at two or more thread counts."""
    by_point: dict[tuple[int, int, int], dict[int, float]] = {}
    for row in rows:
        by_point.setdefault((row["tokens"], row["n_train"], row["n_rescore"]), {})[row["threads"]] = row["ours_first_s"]
    return {k: v[min(v)] / v[max(v)] for k, v in by_point.items() if len(v) > 1 and v[max(v)] > 0}


SWEEP_COLUMNS = (
    ("threads", "threads", "{}"),
    ("tokens", "reasoning tokens", "{}"),
    ("n_train", "examples", "{}"),
    ("candidates", "candidates", "{}"),
    ("ours_first_s", "ours first step s (CPU s)", "{:.1f}"),
    ("ours_later_s", "ours later step s (CPU s)", "{:.1f}"),
    ("ours_tokens_per_s", "ours tokens/s", "{:.0f}"),
    ("floor_s", "floor s (CPU s)", "{:.1f}"),
    ("reference_s", "reference s (CPU s)", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
)


README_MARKERS = ("<!-- speed sweep: start -->", "<!-- speed sweep: end -->")


def splice_into_readme(readme: Path, rows: list[dict]) -> None:
    """The scaling table into the README, between its speed markers (the text around them is kept)."""
    from recipes.mini_tables import splice

    readme.write_text(splice(readme.read_text(), sweep_table(rows).rstrip("\n"), *README_MARKERS))


def sweep_table(rows: list[dict]) -> str:
    """The scaling table as Markdown, with the second thread's speed-up per point below it."""
    lines = ["| " + " | ".join(head for _, head, _ in SWEEP_COLUMNS) + " |", "|" + "---|" * len(SWEEP_COLUMNS)]
    for row in rows:
        cells = []
        for key, _, fmt in SWEEP_COLUMNS:
            value = row[key]
            cell = "-" if value is None else fmt.format(value)
            cpu = key[:-2] + "_cpu_s" if key.endswith("_s") else None
            if cpu in row and row[cpu] is not None:
                cell += f" ({row[cpu]:.1f})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    speedups = thread_speedups(rows)
    if speedups:
        lines.append("")
        lines.append("ours, first step, wall seconds at the fewest threads / at the most:")
        for (tokens, n_train, n_rescore), ratio in speedups.items():
            lines.append(f"- {tokens} tokens, {n_train} examples, {n_rescore} re-scored: {ratio:.2f}x")
    return "\n".join(lines) + "\n"

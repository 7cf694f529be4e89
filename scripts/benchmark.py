"""Time one GReaTer step the engine's way and the reference implementation's way, in one process.

    python scripts/benchmark.py --tokens 128 --pattern reference floor --json out.json

Runs the engine's own `GreaterOptimizer.step` ("ours"), then the same step on the same inputs and token
counts, at the optimizer's own settings, as the reference code computes it ("reference") and as bare batched
model calls ("floor"; `--pattern floor_kernels` adds the floor on ours' CPU kernels, where the reference and the
floor run transformers' own); see scripts/recipes/patterns.py. Prints one table per pattern (median seconds over
repeats, CPU seconds, tokens, peak memory per stage) and the ratios; with --json writes
{"speedup_vs_reference", "ratio_to_floor", "selection_vs_scratch", "selection_reuse_vs_scratch",
"equal_results", "stages", "settings"}. It also re-scores the step's candidates three ways: from scratch
(full generation, then full forward passes for the answer and the fluency term), as the engine does (answers
read from the generation's cache, shared prefixes), and as the engine does with reasoning reuse on; and
checks all three find the same rollouts. Ratios, not absolute times, are what compare across machines.
`--ranking exact` runs ours as `optimizer.ranking=exact`: its table has the `exact` stage (every proposal's
loss with the reasoning held fixed) beside the `gradient` stage of the same step.

    python scripts/benchmark.py --sweep --json sweep.json --table sweep.md [--skip-reference] [--readme README.md]

writes the scaling table instead: threads 1 and 2, reasoning tokens 64/128/512, 4/8/32 training examples,
3 and 6 candidates re-scored, each axis varied on its own around 128 tokens, 8 examples and 3 re-scored
(--sweep-full: every combination; each axis can be narrowed, e.g. --sweep-threads 2 --sweep-tokens 64); per
point ours (first and later steps), the floor and the reference, wall and CPU seconds, tokens/s, peak memory.
--readme splices the table into the README's speed section; --from-json sweep.json redraws the table (and the
README) from a sweep's JSON without measuring again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from greater.models.language_model import LanguageModel
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.optimizer import GreaterOptimizer
from greater.tasks.base import Task
from recipes.benchmark import (
    PATTERNS,
    Grid,
    report,
    run_patterns,
    splice_into_readme,
    summarize,
    sweep,
    sweep_table,
)


def load_model(args: argparse.Namespace) -> LanguageModel:
    from greater.models.registry import load_model_config

    cfg = load_model_config(args.model)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device here; run without it for the CPU")
        cfg.device = args.device
        cfg.dtype = args.dtype or "auto"
    elif args.dtype:
        cfg.dtype = args.dtype
    cfg.cpu_kernels = args.cpu_kernels
    return LanguageModel.from_config(cfg)


def load_task(args: argparse.Namespace, n_train: int) -> Task:
    from greater.api import load_task

    return load_task(args.task, data_dir=args.data_dir, n_train=n_train)


def load(args: argparse.Namespace) -> tuple[LanguageModel, Task]:
    return load_model(args), load_task(args, args.n_train)


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
    parser.add_argument(
        "--cpu-kernels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ours with the packed linear layers and decode attention (model.cpu_kernels); --no-cpu-kernels: without",
    )
    parser.add_argument(
        "--ranking",
        choices=["gradient", "exact"],
        default="gradient",
        help="optimizer.ranking of ours: exact adds the 'exact' stage, timed in the same step as the gradient",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the summary (or the sweep's rows) here")
    parser.add_argument("--sweep", action="store_true", help="the scaling table over the --sweep-* axes")
    grid = Grid()
    for axis in ("threads", "tokens", "n_train", "n_rescore"):
        flag = "--sweep-" + axis.replace("_", "-")
        parser.add_argument(flag, type=int, nargs="+", default=list(getattr(grid, axis)), help=f"sweep: {axis}")
    parser.add_argument("--sweep-full", action="store_true", help="sweep: every combination of the axes")
    parser.add_argument("--skip-reference", action="store_true", help="sweep: leave the slow reference out")
    parser.add_argument("--table", type=Path, default=None, help="sweep: write the Markdown table here")
    parser.add_argument("--readme", type=Path, default=None, help="sweep: splice the table into this README")
    parser.add_argument("--from-json", type=Path, default=None, help="sweep: the rows of this sweep JSON, not measured")
    args = parser.parse_args(argv)
    # ours always runs, and so does the floor: it is the yardstick every ratio_to_floor needs
    args.pattern = ["ours"] + [p for p in dict.fromkeys([*args.pattern, "floor"]) if p != "ours"]
    return args


def measure_sweep(args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(0)
    lm = load_model(args)
    axes = (tuple(getattr(args, "sweep_" + axis)) for axis in ("threads", "tokens", "n_train", "n_rescore"))
    grid = Grid(*axes, full=args.sweep_full)
    return sweep(
        lm, lambda n: load_task(args, n), grid, not args.skip_reference, args.repeats, args.position, on_row=print
    )


def read_sweep(path: Path) -> list[dict]:
    """The rows of a sweep's JSON (what --sweep --json wrote); a missing or malformed file stops in one line."""
    try:
        return json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(
            f"--from-json {path}: not a sweep's JSON ({type(err).__name__}: {err}); "
            "pass the file `--sweep --json` wrote, or leave --from-json out to measure"
        ) from None


def run_sweep(args: argparse.Namespace) -> list[dict]:
    rows = read_sweep(args.from_json) if args.from_json else measure_sweep(args)
    table = sweep_table(rows)
    print(table)
    if args.json and not args.from_json:
        args.json.write_text(json.dumps({"model": args.model, "task": args.task, "rows": rows}, indent=2))
    if args.table:
        args.table.write_text(table)
    if args.readme:
        splice_into_readme(args.readme, rows)
    return rows


def main(argv: list[str] | None = None) -> dict | list[dict]:
    args = parse(argv)
    if args.sweep:
        return run_sweep(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lm, task = load(args)
    opt = GreaterOptimizer(GreaterConfig(ranking=args.ranking))
    result = run_patterns(lm, task, opt, args.pattern, args.repeats, args.tokens, args.position)
    shown = {k: getattr(args, k) for k in ("model", "task", "n_train", "tokens", "repeats", "ranking")}
    summary = summarize(result, lm, shown)
    report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()

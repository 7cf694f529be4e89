"""Does the GReaTer gradient carry information? Predicted against actual loss changes (issue 20).

    python scripts/gradient_diagnostic.py --models smollm2-135m gemma3-270m \
        --tasks synthetic/compare_numbers synthetic/word_problem --out docs/results/gradient_diagnostic

For each (model, task), sampled (prompt, position) pairs over the task's initial prompt and seeded
single-token edits of it; at each, GReaTer's own proposals, their gradient-predicted loss change, and the
actual change with the reasoning held fixed and regenerated (scripts/recipes/gradient_information.py).
One CSV row per candidate, appended as each pair finishes, so an interrupted run continues where it
stopped; <out>.md is rewritten from the CSV each time (scripts/recipes/gradient_summary.py). On a GPU:

    python scripts/gradient_diagnostic.py --models gemma2-9b --device cuda --tasks bbh/navigate \
        --data-dir ../shared/data --out docs/results/gradient_diagnostic_gpu
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from recipes.gradient_summary import read_rows, table, why_table


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--tasks", nargs="+", default=["synthetic/compare_numbers", "synthetic/word_problem"])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--device", default=None, help="override the model config's device (cpu, cuda, ...)")
    parser.add_argument("--n-train", type=int, default=8, help="training examples the loss averages over")
    parser.add_argument("--max-reasoning-tokens", type=int, default=64)
    parser.add_argument("--n-pairs", type=int, default=8, help="(prompt, position) pairs per (model, task)")
    parser.add_argument("--n-edits", type=int, default=1, help="random single-token edits of the initial prompt")
    parser.add_argument("--max-candidates", type=int, default=6, help="measured candidates per pair (random subset)")
    parser.add_argument("--topk", type=int, default=None, help="proposal top-k (default: GReaTer's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-reasoning",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start each regeneration from the current prompt's reasoning, verified in one pass (same tokens)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/results/gradient_diagnostic"))
    parser.add_argument("--render-only", action="store_true", help="rewrite <out>.md from <out>.csv and stop")
    return parser.parse_args(argv)


def page(rows: list[dict], command: str, settings: str) -> str:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["task"]), []).append(r)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return "\n".join(
        [
            "# Gradient diagnostic: does GReaTer's gradient predict the loss change?",
            "",
            "For sampled (prompt, position) pairs: each proposed token's first-order prediction",
            "g[v] - g[current] against the actual change of the answer loss (at GReaTer's answer temperature)",
            "with (a) the reasoning held fixed (teacher-forced) and (b) the reasoning regenerated under the new",
            "prompt. rho: mean over pairs of the per-pair Spearman correlation, 95% bootstrap interval over pairs;",
            "control: the same for a seeded random prediction (should be about 0). top-1 in top-3: how often the",
            "gradient's best candidate is among the three that actually lower the loss most; random: its chance.",
            "The interval resamples pairs (one correlation per pair), never the candidates inside a pair. Pairs",
            "drawn on the same prompt are not independent and the prompts are not resampled, so where a few",
            "prompts carry all pairs the interval is narrower than the data warrant: read it as descriptive.",
            "",
            f"Settings: {settings}.",
            "",
            table(groups),
            "",
            "Why: rho of sizes is the Spearman correlation of |predicted| against |actual| per pair (does the",
            "gradient see how far a token moves the loss, sign aside?); the shares are over every measured",
            "candidate: predicted to lower the loss, and actually raising it.",
            "",
            why_table(groups),
            "",
            f"Made at commit {commit or 'unknown'} by (rows resume across runs; `--render-only` rewrites this page):",
            "",
            f"    nice -n 5 .venv/bin/python {command}",
            "",
        ]
    )


def settings(args: argparse.Namespace) -> str:
    from greater.optimizers.greater.config import GreaterConfig

    config = GreaterConfig()
    return (
        f"{args.n_train} training examples, {args.max_reasoning_tokens} reasoning tokens, {args.n_pairs} pairs per "
        f"(model, task) over the initial prompt and {args.n_edits} seeded single-token edit(s), at most "
        f"{args.max_candidates} proposals measured per pair (a seeded random subset), "
        f"top-k {args.topk or config.topk}, answer temperature {config.answer_temperature}, seed {args.seed}"
    )


def run(args: argparse.Namespace, csv_path: Path, md_path: Path, command: str) -> None:
    import torch

    from greater.api import load_task
    from greater.config import DEFAULT_CACHE_DIR
    from greater.engine.rollouts import Scorer
    from greater.models.language_model import LanguageModel
    from greater.models.registry import load_model_config
    from greater.optimizers.greater.candidates import allowed_token_mask
    from greater.optimizers.greater.config import GreaterConfig
    from greater.optimizers.greater.objective import PromptScorer
    from greater.tasks import task_config
    from recipes.gradient_information import run_pairs, sample_pairs

    torch.set_num_threads(args.threads)
    config = GreaterConfig(**({"topk": args.topk} if args.topk else {}))
    for model_name in args.models:
        cfg = load_model_config(model_name)
        if args.device:
            cfg.device = args.device
        lm = LanguageModel.from_config(cfg, DEFAULT_CACHE_DIR)
        allowed = allowed_token_mask(lm.tokenizer, config.token_filter)
        for task_name in args.tasks:
            task = load_task(task_name, data_dir=args.data_dir, seed=args.seed, n_train=args.n_train)
            shared = Scorer(lm, task, task_config(task_name).placement, args.max_reasoning_tokens, args.reuse_reasoning)
            scorer = PromptScorer(shared, task.train, 0.0)
            pairs = sample_pairs(lm.encode(task.initial_prompt), allowed, args.n_pairs, args.n_edits, args.seed)
            context = {"model": model_name, "task": task_name}
            if run_pairs(lm, scorer, pairs, config, allowed, args.max_candidates, csv_path, context):
                md_path.write_text(page(read_rows(csv_path), command, settings(args)))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    csv_path, md_path = args.out.with_suffix(".csv"), args.out.with_suffix(".md")
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--render-only"]
    command = shlex.join(["scripts/gradient_diagnostic.py", *given])
    if args.render_only:
        if not csv_path.exists():
            sys.exit(f"--render-only: no diagnostic rows at {csv_path}; run the diagnostic first (drop --render-only)")
        md_path.write_text(page(read_rows(csv_path), command, settings(args)))
        return 0
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    run(args, csv_path, md_path, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())

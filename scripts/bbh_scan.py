"""Zero-shot scan of the 27 BIG-Bench Hard tasks on one model, in both evaluation modes (issue 12).

    python scripts/bbh_scan.py --data-dir ../shared/data --n-test 40 --threads 1 \
        --out docs/results/bbh_zero_shot_scan

For each task: the task's initial prompt, greedy reasoning once, then the answer read both ways, as
`python -m greater.evaluate evaluation.mode=generate|loglik` reads it (scripts/recipes/scan.py: one
reasoning serves both modes, which halves the cost on a CPU). Rows are appended to <out>.csv as tasks
finish, so an interrupted scan continues where it stopped; <out>.md is rewritten from the CSV each time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from recipes.paper import BBH_TASKS
from recipes.scan import page, scan_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--max-reasoning-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--batch-tokens", type=int, default=16384, help="padded tokens per generation batch (BBH questions are long)"
    )
    parser.add_argument("--tasks", nargs="*", default=list(BBH_TASKS))
    parser.add_argument("--out", type=Path, default=Path("docs/results/bbh_zero_shot_scan"))
    parser.add_argument("--render-only", action="store_true", help="rewrite <out>.md from <out>.csv and stop")
    args = parser.parse_args(argv)
    csv, md = args.out.with_suffix(".csv"), args.out.with_suffix(".md")
    shown = (args.model, args.n_test, args.max_reasoning_tokens)
    if args.render_only:
        if not csv.exists():
            parser.error(f"--render-only: no scan results at {csv}; run the scan first (drop --render-only)")
        md.write_text(page(pd.read_csv(csv), *shown))
        return 0

    import torch

    from greater.api import load_task
    from greater.config import DEFAULT_CACHE_DIR
    from greater.models.language_model import LanguageModel
    from greater.models.registry import load_model_config
    from greater.tasks import task_config

    torch.set_num_threads(args.threads)
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["task"])
    model = load_model_config(args.model)
    model.batch_tokens = args.batch_tokens  # the model config's cap is sized for short questions
    lm = LanguageModel.from_config(model, DEFAULT_CACHE_DIR)
    for name in [t for t in args.tasks if t not in set(done.task)]:
        started = time.perf_counter()
        task = load_task(f"bbh/{name}", data_dir=args.data_dir, n_test=args.n_test)
        placement = task_config(f"bbh/{name}").placement  # where greater-evaluate would put the prompt
        row = {"task": name, "model": args.model, **scan_task(lm, task, args.max_reasoning_tokens, None, placement)}
        row["seconds"] = round(time.perf_counter() - started, 1)
        done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
        done.round(4).to_csv(csv, index=False)
        md.write_text(page(done, *shown))
        print(f"{name}: generate {row['generate_acc']:.2f} loglik {row.get('loglik_acc', float('nan')):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

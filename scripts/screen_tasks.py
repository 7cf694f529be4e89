"""Screen the generated tasks for the powered experiment (issue 20): where can a prompt matter?

    python scripts/screen_tasks.py --models smollm2-135m gemma3-270m --n 100 --threads 2

For each (model, task): the task's initial prompt on the first --n test examples of seed 0, greedy reasoning up to
--max-reasoning-tokens, the answer generated after the extractor and parsed, as `greater-evaluate` reads it.
A task is kept for a model when its accuracy lies clearly between chance and ceiling (the 95% interval above
chance + 5 points and below 90%), or when at least 20% of its answers fail the parser (a prompt can fix the
format). Rows are appended to <out>.csv as they finish, so an interrupted screening continues; <out>.md is
rewritten from the CSV each time (scripts/recipes/screening.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from recipes.screening import SCREENED_TASKS, page, screen_row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--tasks", nargs="+", default=list(SCREENED_TASKS))
    parser.add_argument("--n", type=int, default=100, help="test examples per (model, task)")
    parser.add_argument("--max-reasoning-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", type=Path, default=Path("docs/results/screening"))
    args = parser.parse_args(argv)
    csv, md = args.out.with_suffix(".csv"), args.out.with_suffix(".md")

    import torch

    from greater.api import load_task
    from greater.config import DEFAULT_CACHE_DIR
    from greater.models.language_model import LanguageModel
    from greater.models.registry import load_model_config

    if args.threads:
        torch.set_num_threads(args.threads)
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["model", "task"])
    finished = set(zip(done.model, done.task))
    for model in args.models:
        todo = [t for t in args.tasks if (model, t) not in finished]
        if not todo:
            continue
        lm = LanguageModel.from_config(load_model_config(model), DEFAULT_CACHE_DIR)
        for name in todo:
            started = time.perf_counter()
            task = load_task(name, n_test=args.n)
            row = {"model": model, "task": name, **screen_row(lm, task, args.max_reasoning_tokens)}
            row["seconds"] = round(time.perf_counter() - started, 1)
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            done.round(4).to_csv(csv, index=False)
            md.write_text(page(done, args.n, args.max_reasoning_tokens))
            print(f"{model} {name}: acc {row['acc']:.2f} unparsed {row['unparsed']:.2f} ({row['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

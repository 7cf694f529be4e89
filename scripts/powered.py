"""The powered experiment of issue 20: what it can detect, then its runs, resumable from the committed records.

    python scripts/powered.py plan     # what each comparison detects, per cell -> docs/results/powered/design.md
    python scripts/powered.py run --parallel 2 --hours 8      # every job without a record, primaries first
    python scripts/powered.py run --arms zs_cot greater --seeds 0 1   # a slice
    python scripts/powered.py status                # cells done of planned, per arm
    python scripts/powered.py tables                # docs/results/mini_tables.md from the records

Tasks per model come from the committed screening (docs/results/screening.csv, scripts/screen_tasks.py). Each
finished job leaves a compact record under docs/results/powered/records/ (commit it); rerunning `run` anywhere
skips the jobs that have one (scripts/recipes/powered.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from recipes.powered import ARM_ORDER, ARMS, RECORDS, jobs, pending, run_all
from recipes.powered_design import best_text_arm, comparison_rows, records_rows, screened_tasks
from recipes.powered_plan import design_page

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["plan", "run", "status", "tables"])
    parser.add_argument("--arms", nargs="+", default=ARM_ORDER, choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: each arm's own (12 or 5)")
    parser.add_argument("--models", nargs="+", default=None, help="default: every model in the screening")
    parser.add_argument("--parallel", type=int, default=2, help="jobs at once (one thread each)")
    parser.add_argument("--hours", type=float, default=None, help="start no job after this many hours")
    parser.add_argument("--screening", type=Path, default=ROOT / "docs/results/screening.csv")
    args = parser.parse_args(argv)
    tasks = screened_tasks(args.screening)
    if args.models:
        tasks = {m: t for m, t in tasks.items() if m in args.models}
    every = jobs(tasks, args.arms, args.seeds, best_text_arm(records_rows(ROOT / RECORDS)))
    if args.command == "plan":
        out = ROOT / RECORDS.parent / "design.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(design_page(tasks, ROOT / RECORDS))
        print(pd.DataFrame(comparison_rows(tasks, ROOT / RECORDS)).to_markdown(index=False))
        print(f"wrote {out}")
        return 0
    if args.command == "tables":
        from recipes.mini_tables import MINI_OUT
        from recipes.powered_tables import write_powered

        print(write_powered(ROOT / RECORDS, ROOT / MINI_OUT, ROOT / "docs/results/gradient_diagnostic.csv"))
        return 0
    todo = pending(every, ROOT / RECORDS)
    if args.command == "status":
        done = Counter(j.arm for j in every if j not in set(todo))
        for arm in [a for a in ARM_ORDER if a in args.arms]:
            total = sum(j.arm == arm for j in every)
            print(f"{arm:16s} {done[arm]:3d} of {total} cells")
        return 0
    deadline = time.time() + 3600 * args.hours if args.hours else None
    print(f"{len(todo)} of {len(every)} jobs to run, {args.parallel} at a time", flush=True)
    return 1 if run_all(todo, ROOT / "run.py", args.parallel, deadline) else 0


if __name__ == "__main__":
    sys.exit(main())

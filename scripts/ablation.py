"""The GReaTer ablation: the reference configuration against each of our variants and two controls.

Runs every arm for every seed through the real entry point (one job at a time, one thread each), then
writes docs/results/ablation.md from the runs' result.json and per-example predictions: test accuracy per
arm pooled over seeds with a 95% Wilson interval, per-seed accuracies, and the paired change against the
reference on the same test examples. The arms, the profile and the table are scripts/recipes/ablation.py.

    python scripts/ablation.py --task synthetic/truth_tellers --seeds 0 1 --out /tmp/ablation
    python scripts/ablation.py --task synthetic/truth_tellers --seeds 0 1 --out /tmp/ablation --table-only
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recipes.ablation import ARMS, DEFAULT_ARMS, run_arm, table

ROOT = Path(__file__).resolve().parents[1]  # the checkout: its run.py is the entry point every arm runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, choices=list(ARMS))
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "ablation")
    parser.add_argument("--table-only", action="store_true", help="write the table from runs already done")
    args = parser.parse_args(argv)
    if not args.table_only:
        for task in args.task:
            for seed in args.seeds:
                for arm in args.arms:
                    run_arm(args.out, task, arm, seed, ROOT / "run.py")
    for task in args.task:
        print("\n".join(table(args.out, task, args.seeds)))


if __name__ == "__main__":
    main()

"""Paper-style tables from result files: Table 1 (each method on each benchmark, optimized and evaluated
with the same model) and Table 2 (prompts optimized with one model, evaluated on another).

    python scripts/reproduce_tables.py multirun/ [--out tables]   # writes tables.md and tables.tex
    python scripts/reproduce_tables.py --profile mini   # multirun/mini_table* -> docs/results/mini_tables.md

Accuracies are percentages of the final prompt on the test split. BBH is the mean over the BBH tasks
present of the paper's 21 (greater/analysis/paper.py). Where the model is one of the paper's, the published
number stands beside ours. A run whose prompts another model wrote (optimizer.writer) is a row of its own,
"APO (writer: gemma3-270m)", beside the paper's "APO (GPT-4)"; GEPA runs are the "GEPA" row. The tables are
greater/analysis/tables.py and mini_tables.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from greater.analysis.collect import collect_all
from greater.analysis.mini_tables import MINI_OUT, MINI_ROOTS, write_mini
from greater.analysis.tables import write_paper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="*", help="run or sweep directories (searched recursively)")
    parser.add_argument("--profile", choices=["paper", "mini"], default="paper", help="mini: issue 12's tables")
    parser.add_argument("--out", type=Path, default=None, help="paper: <out>.md/.tex; mini: a folder")
    args = parser.parse_args(argv)
    roots = args.roots or (MINI_ROOTS if args.profile == "mini" else [])
    if not roots:
        parser.error("give run or sweep directories (or --profile mini for the multirun/mini_table* sweeps)")
    results = collect_all(roots)
    if results.empty:
        print(f"error: no result.json under {', '.join(map(str, roots))}; run the sweeps first", file=sys.stderr)
        return 1
    if args.profile == "mini":
        print(write_mini(results, args.out or MINI_OUT))
        return 0
    print(write_paper(results, args.out or Path("tables")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

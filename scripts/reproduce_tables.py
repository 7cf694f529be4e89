"""Paper-style tables from result files: Table 1 (each method on each benchmark, optimized and evaluated
with the same model) and Table 2 (prompts optimized with one model, evaluated on another).

    python scripts/reproduce_tables.py multirun/ [--out tables]   # writes tables.md and tables.tex
    python scripts/reproduce_tables.py --profile mini   # the powered experiment's committed records
                                                        # -> docs/results/mini_tables.md, CSVs and figures
    python scripts/reproduce_tables.py --profile mini multirun/mini_table1 ...   # issue 12's sweeps instead

Accuracies are percentages of the final prompt on the test split. BBH is the mean over the BBH tasks
present of the paper's 21 (scripts/recipes/paper.py). Where the model is one of the paper's, the published
number stands beside ours. A run whose prompts another model wrote (optimizer.writer) is a row of its own,
"APO (writer: gemma3-270m)", beside the paper's "APO (GPT-4)"; GEPA runs are the "GEPA" row. The tables are
scripts/recipes/tables.py and mini_tables.py; the powered experiment's page is powered_tables.py, read from
docs/results/powered/records/ (scripts/powered.py runs it) and the gradient diagnostic's CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from greater.compare.collect import collect_all
from recipes.mini_tables import MINI_OUT, write_mini
from recipes.powered import RECORDS
from recipes.powered_tables import write_powered
from recipes.tables import write_paper

ROOT = Path(__file__).resolve().parents[1]
DIAGNOSTIC = Path("docs/results/gradient_diagnostic.csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="*", help="run or sweep directories (searched recursively)")
    parser.add_argument("--profile", choices=["paper", "mini"], default="paper", help="mini: issue 20's tables")
    parser.add_argument("--out", type=Path, default=None, help="paper: <out>.md/.tex; mini: a folder")
    args = parser.parse_args(argv)
    if args.profile == "mini" and not args.roots:
        if not (ROOT / RECORDS).is_dir():
            print(f"error: no records under {RECORDS}; run `python scripts/powered.py run` first", file=sys.stderr)
            return 1
        print(write_powered(ROOT / RECORDS, args.out or ROOT / MINI_OUT, ROOT / DIAGNOSTIC))
        return 0
    roots = args.roots
    if not roots:
        parser.error("give run or sweep directories (or --profile mini for the powered experiment's records)")
    results = collect_all(roots)
    if results.empty:
        print(f"error: no result.json under {', '.join(map(str, roots))}; run the sweeps first", file=sys.stderr)
        return 1
    if args.profile == "mini":
        print(write_mini(results, args.out or Path("mini_tables")))  # beside, not over, the committed page
        return 0
    print(write_paper(results, args.out or Path("tables")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

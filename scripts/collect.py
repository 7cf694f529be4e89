"""Gather every result.json under a directory into one table: a row per run and evaluated model.

python scripts/collect.py multirun/2026-11-24 [--out results]   # writes results.csv and results.md
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from greater.compare.collect import collect


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a run or sweep directory (searched recursively)")
    parser.add_argument("--out", type=Path, default=None, help="write <out>.csv and <out>.md (default: <root>/results)")
    args = parser.parse_args(argv)
    if not args.root.exists():
        print(f"error: {args.root} does not exist; give a run or sweep directory", file=sys.stderr)
        return 1
    table = collect(args.root)
    if table.empty:
        print(f"error: no result.json under {args.root}", file=sys.stderr)
        return 1
    out = args.out or args.root / "results"
    table.to_csv(out.with_suffix(".csv"), index=False)
    markdown = table.drop(columns=["run_dir"]).to_markdown(index=False, floatfmt=".3f")
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    print(f"\n{len(table)} rows -> {out.with_suffix('.csv')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write conf/sweep/*.yaml from the paper's task lists (scripts/recipes/paper.py), or check them.

python scripts/sweeps.py           # rewrite the sweep files that differ
python scripts/sweeps.py --check   # exit 1, naming them, when any differs
"""

from __future__ import annotations

import argparse
import sys

from greater.config import conf_dir
from recipes import sweeps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which files differ")
    args = parser.parse_args(argv)
    if args.check:
        stale = sweeps.stale(conf_dir())
        for path in stale:
            print(f"{path} differs from scripts/recipes/paper.py; run python scripts/sweeps.py", file=sys.stderr)
        return 1 if stale else 0
    for path in sweeps.write(conf_dir()):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

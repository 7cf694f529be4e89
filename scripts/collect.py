"""Gather every result.json under a directory into one table: a row per run and evaluated model.

python scripts/collect.py multirun/2026-11-24 [--out results]   # writes results.csv and results.md
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from greater.run.results import RunResult

log = logging.getLogger("collect")
COLUMNS = [
    "run_dir",
    "task",
    "model",
    "eval_model",
    "optimizer",
    "seed",
    "prompt_kind",
    "acc",
    "ci_low",
    "ci_high",
    "n",
    "n_unparsed",
    "steps",
    "final_prompt",
    "seconds",
    "tokens",
    "rollouts",
    "predictions",
]


def rows_of(path: Path) -> list[dict]:
    result = RunResult.read(path)
    return [
        {
            "run_dir": str(path.parent),
            "task": result.task,
            "model": result.model,
            "eval_model": row.model,
            "optimizer": result.optimizer,
            "seed": result.seed,
            "prompt_kind": row.prompt_kind,
            "acc": row.acc,
            "ci_low": row.ci_low,
            "ci_high": row.ci_high,
            "n": row.n,
            "n_unparsed": row.n_unparsed,
            "steps": result.steps,
            "final_prompt": result.final_prompt,
            "seconds": result.seconds.get("total"),
            "tokens": _tokens(result.compute),
            "rollouts": result.compute.get("task.rollouts", 0),
            "predictions": str(path.parent / row.predictions_file) if row.predictions_file else None,
        }
        for row in result.test
    ]


def _tokens(compute: dict[str, float]) -> float:
    """Optimization compute in tokens: generated plus forwarded, over every role."""
    return sum(v for k, v in compute.items() if k.endswith((".tokens_generated", ".tokens_forwarded")))


def outcomes(predictions_file: str | Path) -> dict[str, bool]:
    """Example id -> whether the prompt answered it right, from a run's predictions_*.jsonl."""
    with Path(predictions_file).open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return {str(r["id"]): bool(r["correct"]) for r in records}


def collect(root: Path) -> pd.DataFrame:
    """One row per (run, evaluated model, prompt kind); malformed result files are skipped with a warning."""
    rows: list[dict] = []
    for path in sorted(Path(root).rglob("result.json")):
        try:
            rows += rows_of(path)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            log.warning("skipping %s: not a greater result file (%s: %s)", path, type(err).__name__, err)
    return pd.DataFrame(rows, columns=COLUMNS)


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

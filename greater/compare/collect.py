"""Every result.json under a directory as one table (a row per run, evaluated model and prompt kind), and
the one reader of a run's per-example predictions.

`outcomes` reads a predictions_*.jsonl (the evaluator's `EvaluationResult.write_predictions`); when the run
package offers a reader of its own (greater/evaluation/store.py `read_predictions`), this becomes a call to it.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pandas as pd

from greater.lifecycle.results import RunResult

log = logging.getLogger(__name__)
COLUMNS = [
    "run_dir",
    "task",
    "model",
    "eval_model",
    "optimizer",
    "writer",
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
            "writer": writer_of(result),
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
            "tokens": optimization_tokens(result.compute),
            "rollouts": result.compute.get("task.rollouts", 0),
            "predictions": str(path.parent / row.predictions_file) if row.predictions_file else None,
        }
        for row in result.test
    ]


def writer_of(result: RunResult) -> str | None:
    """The model that wrote a text method's prompts when it was not the task model (None: the task model)."""
    writer = result.writer or {}
    return None if writer.get("kind") in (None, "task_model") else str(writer["name"]).split(" @ ")[0]


def optimization_tokens(compute: dict[str, float]) -> float:
    """Optimization compute in tokens: generated plus forwarded, over every role."""
    return sum(v for k, v in compute.items() if k.endswith((".tokens_generated", ".tokens_forwarded")))


def outcomes(predictions_file: str | Path) -> dict[str, bool]:
    """Example id -> whether the prompt answered it right, from a run's predictions_*.jsonl."""
    path = Path(predictions_file)
    if not path.exists() and path.with_name(path.name + ".gz").exists():
        path = path.with_name(path.name + ".gz")  # a committed record keeps its predictions gzipped
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
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


def collect_all(roots: list[Path]) -> pd.DataFrame:
    """`collect` over several roots (those that exist), as one table."""
    tables = [collect(root) for root in roots if Path(root).exists()]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)

"""Paper-style tables from result files: Table 1 (each method on each benchmark, optimized and evaluated
with the same model) and Table 2 (prompts optimized with one model, evaluated on another).

    python scripts/reproduce_tables.py multirun/ [--out tables]   # writes tables.md and tables.tex

Accuracies are percentages of the final prompt on the test split. BBH is the mean over the BBH tasks
present. Where the model is one of the paper's, the published number stands beside ours.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.collect import collect

METHODS = {
    "zs_cot": "ZS-CoT",
    "ape": "APE",
    "apo": "APO",
    "pe2": "PE2",
    "textgrad": "TextGrad",
    "opro": "OPRO",
    "greater": "GReaTer",
    "greater_plus": "GReaTer+",
}
# Table 1 of Das et al. (ICLR 2025), as listed in shared/paper/reported.md: (model, benchmark) -> accuracy.
PAPER = {
    "ZS-CoT": {
        ("gemma2-9b", "GSM8K"): 88.6,
        ("gemma2-9b", "BBH"): 71.7,
        ("gemma2-9b", "FOLIO"): 65.0,
        ("llama3-8b", "GSM8K"): 79.6,
        ("llama3-8b", "BBH"): 62.2,
        ("llama3-8b", "FOLIO"): 58.6,
    },
    "GReaTer": {
        ("gemma2-9b", "GSM8K"): 89.4,
        ("gemma2-9b", "BBH"): 76.6,
        ("gemma2-9b", "FOLIO"): 69.1,
        ("llama3-8b", "GSM8K"): 82.6,
        ("llama3-8b", "BBH"): 68.7,
        ("llama3-8b", "FOLIO"): 62.6,
    },
}


def benchmark(task: str) -> str:
    return "BBH" if task.startswith("bbh/") else {"gsm8k": "GSM8K", "folio": "FOLIO"}.get(task, task)


def finals(results: pd.DataFrame) -> pd.DataFrame:
    rows = results[results.prompt_kind == "final"].copy()
    rows["method"] = rows.optimizer.map(METHODS).fillna(rows.optimizer)
    rows["benchmark"] = rows.task.map(benchmark)
    rows["acc"] = 100 * rows.acc
    return rows


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Method x (model, benchmark): mean over seeds within a task, then over tasks within a benchmark."""
    own = finals(results)
    own = own[own.model == own.eval_model]
    per_task = own.groupby(["method", "model", "benchmark", "task"]).acc.mean().reset_index()
    table = per_task.groupby(["method", "model", "benchmark"]).acc.mean().unstack(["model", "benchmark"])
    for method in table.index:
        for model, bench in list(table.columns):
            paper = PAPER.get(method, {}).get((model, bench))
            if paper is not None:
                table.loc[method, (model, f"{bench} (paper)")] = paper
    return table.sort_index(axis=1).round(1)


def table2(results: pd.DataFrame) -> pd.DataFrame:
    """Task x (optimized with -> evaluated on), transfer rows only, with an average row."""
    rows = finals(results)
    rows = rows[rows.model != rows.eval_model]
    if rows.empty:
        return pd.DataFrame()
    rows["direction"] = rows.model + " -> " + rows.eval_model
    table = rows.groupby(["method", "direction", "task"]).acc.mean().unstack("task")
    table["average"] = table.mean(axis=1)
    return table.round(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="run or sweep directories (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("tables"), help="writes <out>.md and <out>.tex")
    args = parser.parse_args(argv)
    results = pd.concat([collect(root) for root in args.roots], ignore_index=True)
    if results.empty:
        print(f"error: no result.json under {', '.join(map(str, args.roots))}", file=sys.stderr)
        return 1
    parts = [
        ("Table 1: optimized and evaluated with the same model", table1(results)),
        ("Table 2: transfer", table2(results)),
    ]
    markdown = "\n\n".join(f"## {title}\n\n{t.to_markdown()}" for title, t in parts if not t.empty)
    latex = "\n\n".join(f"% {title}\n{t.to_latex(float_format='%.1f')}" for title, t in parts if not t.empty)
    args.out.with_suffix(".md").write_text(markdown + "\n")
    args.out.with_suffix(".tex").write_text(latex + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Paper-style tables from collected results (greater.compare.collect): Table 1 (each method on each
benchmark, optimized and evaluated with the same model) and Table 2 (prompts optimized with one model,
evaluated on another).

Accuracies are percentages of the final prompt on the test split. BBH is the mean over the paper's 21 BBH
tasks present; the other six are a column of their own. Where the model is one of the paper's, the published
number stands beside ours; a run whose prompts another model wrote is a row of its own ("APO (writer:
gemma3-270m)"), beside the paper's "APO (GPT-4)" in Table 2.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recipes.methods import method_column, ordered, paper_row
from recipes.paper import PAPER, PAPER_TRANSFER, benchmark


def finals(results: pd.DataFrame) -> pd.DataFrame:
    rows = results[results.prompt_kind == "final"].copy()
    rows["method"] = method_column(rows)  # a run with another writer is a method of its own
    rows["benchmark"] = rows.task.map(benchmark)
    rows["acc"] = 100 * rows.acc
    return rows


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Method x (model, benchmark): mean over seeds within a task, then over tasks within a benchmark."""
    own = finals(results)
    own = own[own.model == own.eval_model]
    per_task = own.groupby(["method", "model", "benchmark", "task"]).acc.mean().reset_index()
    table = per_task.groupby(["method", "model", "benchmark"]).acc.mean().unstack(["model", "benchmark"])
    table = table.loc[ordered(table.index)]
    for method in table.index:
        for model, bench in list(table.columns):
            paper = PAPER.get(paper_row(method) or "", {}).get((model, bench))
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
    rank = {m: i for i, m in enumerate(ordered(table.index.get_level_values("method")))}
    table = table.sort_index(key=lambda level: level.map(rank) if level.name == "method" else level)
    table["average"] = table.mean(axis=1)
    paper = [paper_transfer(method, direction) for method, direction in table.index]
    if any(p is not None for p in paper):  # the published average over the paper's own five tasks
        table["average (paper)"] = paper
    return table.round(1)


def paper_transfer(method: str, direction: str) -> float | None:
    """The published average for this row and direction: APO with another writer stands beside the paper's
    "APO (GPT-4)"."""
    source, target = direction.split(" -> ")
    return PAPER_TRANSFER.get((source, target), {}).get(paper_row(method) or "")


def write_paper(results: pd.DataFrame, out: Path) -> str:
    """<out>.md and <out>.tex with both tables; returns the markdown."""
    parts = [
        ("Table 1: optimized and evaluated with the same model", table1(results)),
        ("Table 2: transfer", table2(results)),
    ]
    markdown = "\n\n".join(f"## {title}\n\n{t.to_markdown()}" for title, t in parts if not t.empty)
    latex = "\n\n".join(f"% {title}\n{t.to_latex(float_format='%.1f')}" for title, t in parts if not t.empty)
    out.with_suffix(".md").write_text(markdown + "\n")
    out.with_suffix(".tex").write_text(latex + "\n")
    return markdown

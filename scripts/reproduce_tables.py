"""Paper-style tables from result files: Table 1 (each method on each benchmark, optimized and evaluated
with the same model) and Table 2 (prompts optimized with one model, evaluated on another).

    python scripts/reproduce_tables.py multirun/ [--out tables]   # writes tables.md and tables.tex
    python scripts/reproduce_tables.py --profile mini   # multirun/mini_table{1,2} -> docs/results/mini_tables.md

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

ROOT = Path(__file__).resolve().parents[1]

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
_PAPER_COLUMNS = [(m, b) for m in ("gemma2-9b", "llama3-8b") for b in ("GSM8K", "BBH", "FOLIO")]
_PAPER_ROWS = {
    "ZS-CoT": [88.6, 71.7, 65.0, 79.6, 62.2, 58.6],
    "APE": [88.6, 71.7, 67.5, 79.9, 63.1, 57.6],
    "APO": [88.6, 72.3, 63.1, 81.1, 62.7, 58.6],
    "PE2": [88.6, 68.9, 62.1, 80.1, 61.5, 62.6],
    "TextGrad": [87.8, 72.9, 67.5, 78.5, 58.5, 56.2],
    "GReaTer": [89.4, 76.6, 69.1, 82.6, 68.7, 62.6],
}
PAPER = {method: dict(zip(_PAPER_COLUMNS, values)) for method, values in _PAPER_ROWS.items()}
# Table 2 of the paper: the average over its five BBH transfer tasks, (optimized with, evaluated on) -> accuracy.
PAPER_TRANSFER = {
    ("llama3-8b", "gemma2-9b"): {"TextGrad": 66.8, "APO": 69.4, "PE2": 69.6, "GReaTer": 76.2},
    ("gemma2-9b", "llama3-8b"): {"TextGrad": 42.8, "APO": 59.0, "PE2": 55.4, "GReaTer": 64.6},
}
BBH_TASKS = sorted(p.stem for p in (ROOT / "conf" / "task" / "bbh").glob("[!_]*.yaml"))  # all 27 (not _base)
try:  # the paper's BBH average covers 21 of the 27 tasks; the list lives with the reference formats
    from greater.tasks.reference_formats import PAPER_BBH_TASKS
except ImportError:
    _NOT_IN_PAPER = {
        "dyck_languages",
        "logical_deduction_three_objects",
        "logical_deduction_seven_objects",
        "tracking_shuffled_objects_three_objects",
        "tracking_shuffled_objects_seven_objects",
        "word_sorting",
    }
    PAPER_BBH_TASKS = [t for t in BBH_TASKS if t not in _NOT_IN_PAPER]


def benchmark(task: str) -> str:
    """The column a task counts toward: "BBH" is the paper's 21-task average; the other six BBH tasks
    are reported apart, never averaged into it."""
    if task.startswith("bbh/"):
        return "BBH" if task.split("/", 1)[1] in PAPER_BBH_TASKS else "BBH (not in the paper's 21)"
    return {"gsm8k": "GSM8K", "folio": "FOLIO"}.get(task, task)


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
    paper = [_paper_transfer(method, direction) for method, direction in table.index]
    if any(p is not None for p in paper):  # the published average over the paper's own five tasks
        table["average (paper)"] = paper
    return table.round(1)


def _paper_transfer(method: str, direction: str) -> float | None:
    source, target = direction.split(" -> ")
    return PAPER_TRANSFER.get((source, target), {}).get(method)


MINI_ROOTS = [Path("multirun/mini_table1"), Path("multirun/mini_table2")]
MINI_OUT = Path("docs/results")
START, END = "<!-- mini tables: start -->", "<!-- mini tables: end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="*", help="run or sweep directories (searched recursively)")
    parser.add_argument("--profile", choices=["paper", "mini"], default="paper", help="mini: issue 12's tables")
    parser.add_argument("--out", type=Path, default=None, help="paper: <out>.md/.tex; mini: a folder")
    args = parser.parse_args(argv)
    roots = args.roots or (MINI_ROOTS if args.profile == "mini" else [])
    if not roots:
        parser.error("give run or sweep directories (or --profile mini for multirun/mini_table1 and 2)")
    results = pd.concat([collect(root) for root in roots if root.exists()] or [pd.DataFrame()], ignore_index=True)
    if results.empty:
        print(f"error: no result.json under {', '.join(map(str, roots))}; run the sweeps first", file=sys.stderr)
        return 1
    if args.profile == "mini":
        print(write_mini(results, args.out or MINI_OUT))
        return 0
    write_paper(results, args.out or Path("tables"))
    return 0


def write_paper(results: pd.DataFrame, out: Path) -> None:
    parts = [
        ("Table 1: optimized and evaluated with the same model", table1(results)),
        ("Table 2: transfer", table2(results)),
    ]
    markdown = "\n\n".join(f"## {title}\n\n{t.to_markdown()}" for title, t in parts if not t.empty)
    latex = "\n\n".join(f"% {title}\n{t.to_latex(float_format='%.1f')}" for title, t in parts if not t.empty)
    out.with_suffix(".md").write_text(markdown + "\n")
    out.with_suffix(".tex").write_text(latex + "\n")
    print(markdown)


def write_mini(results: pd.DataFrame, out_dir: Path) -> str:
    """docs/results/mini_tables.md (between its markers; the text around them is kept), CSVs and figures."""
    from scripts import mini_tables as mini

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = mini.final_rows(results, METHODS)
    acc = mini.accuracy_table(rows)
    tests = mini.paired_tests(rows)
    runs = rows[["task", "method", "seed", "model", "eval_model", "n", "acc", "tokens", "rollouts", "final_prompt"]]
    acc.round(3).to_csv(out_dir / "mini_accuracy.csv", index=False)
    tests.round(6).to_csv(out_dir / "mini_paired_tests.csv", index=False)
    runs.round(4).to_csv(out_dir / "mini_runs.csv", index=False)
    own, transfer = acc[acc.model == acc.eval_model], acc[acc.model != acc.eval_model]
    sections = [_mini_table1(mini, own, out_dir), _mini_compute(mini, own, out_dir), _mini_tests(tests)]
    sections += [_mini_table2(mini, transfer, out_dir), _paper_section(), _runs_section(runs)]
    generated = "\n\n".join(s for s in sections if s)
    path = out_dir / "mini_tables.md"
    path.write_text(_splice(path.read_text() if path.exists() else "", generated))
    return generated


def _mini_table1(mini, own: pd.DataFrame, out_dir: Path) -> str:
    parts = []
    for model, part in own.groupby("model"):
        figure = f"mini_table1_{model}.png"
        mini.plot_accuracy(part, out_dir / figure, f"optimized and evaluated on {model}")
        table = mini.method_by_task(part, list(METHODS.values()))
        parts.append(f"### Table 1 (miniature): optimized and evaluated on {model}\n\n{table.to_markdown()}")
        parts.append(f"![accuracy per method and task, {model}]({figure})")
    return "\n\n".join(parts)


def _mini_compute(mini, own: pd.DataFrame, out_dir: Path) -> str:
    if own.empty:
        return ""
    mini.plot_compute(own, out_dir / "mini_compute.png")
    # Wall-clock seconds are left out: on a shared CPU they measure the other jobs as much as the method.
    per_method = own.groupby(["model", "method"])[["tokens", "rollouts", "acc"]].mean().round(1).reset_index()
    return (
        "### Accuracy against compute (optimization only, mean per run; accuracy on the optimizing model)\n\n"
        f"{per_method.to_markdown(index=False)}\n\n![accuracy against optimization tokens](mini_compute.png)"
    )


def _mini_tests(tests: pd.DataFrame) -> str:
    if tests.empty:
        return ""
    shown = tests.assign(p_value=tests.p_value.map(lambda p: f"{p:.3g}"))
    return (
        "### GReaTer against each baseline: exact McNemar test on the same (seed, test example) pairs\n\n"
        "`greater_only`: examples GReaTer answered right and the baseline wrong; `baseline_only`: the reverse.\n\n"
        f"{shown.to_markdown(index=False)}"
    )


def _mini_table2(mini, transfer: pd.DataFrame, out_dir: Path) -> str:
    parts = []
    for (model, eval_model), part in transfer.groupby(["model", "eval_model"]):
        figure = f"mini_table2_{model}_to_{eval_model}.png"
        mini.plot_accuracy(part, out_dir / figure, f"optimized on {model}, evaluated on {eval_model}")
        table = mini.method_by_task(part, list(METHODS.values())).drop(columns=["tokens / run", "rollouts / run"])
        title = f"### Table 2 (miniature): optimized on {model}, evaluated on {eval_model}"
        parts.append(f"{title}\n\n{table.to_markdown()}")
        parts.append(f"![transfer accuracy]({figure})")
    return "\n\n".join(parts)


def _paper_section() -> str:
    """The published numbers in tables of their own: other models, other tasks, never averaged with ours."""
    t1 = pd.DataFrame({m: {f"{model} {bench}": v for (model, bench), v in r.items()} for m, r in PAPER.items()}).T
    t2 = pd.DataFrame({f"{a} -> {b}": r for (a, b), r in PAPER_TRANSFER.items()})
    return (
        "### Published numbers (Das et al., ICLR 2025), for scale only: 8-9B models, BBH (21 tasks) / GSM8K / "
        f"FOLIO\n\nTable 1:\n\n{t1.to_markdown()}\n\nTable 2, average over five BBH tasks:\n\n{t2.to_markdown()}"
    )


def _runs_section(runs: pd.DataFrame) -> str:
    shown = runs.assign(acc=(100 * runs.acc).round(1), final_prompt=runs.final_prompt.str.slice(0, 80))
    shown = shown.drop(columns=["tokens", "rollouts"]).sort_values(["task", "method", "seed", "eval_model"])
    return f"### Every run (final prompt, first 80 characters)\n\n{shown.to_markdown(index=False)}"


def _splice(text: str, generated: str) -> str:
    """Replace what lies between the markers; a file without them gets the block appended."""
    block = f"{START}\n{generated}\n{END}"
    if START in text and END in text:
        return text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    return (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""The paper's Tables 1 and 2 in miniature (issue 12): accuracy with 95% intervals, compute, and exact
McNemar tests of GReaTer against each baseline over the same test examples, as docs/results/mini_tables.md
(between its markers; the text around them is kept), CSVs and figures.

Written by `python scripts/reproduce_tables.py --profile mini`; the statistics are recipes.statistics.
Intervals: a method's accuracy on a task is pooled over its seeds (correct / total over every seed's test
split), with a Wilson 95% interval on the pooled counts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recipes.methods import ordered
from recipes.paper import PAPER, PAPER_TRANSFER
from recipes.statistics import accuracy_table, final_rows, paired_tests

# The sweep dirs of conf/experiment/mini_table1.yaml, mini_table2.yaml and their writer sweeps (*_writer.yaml).
MINI_ROOTS = [
    Path(f"multirun/{name}") for name in ("mini_table1", "mini_table2", "mini_table1_writer", "mini_table2_writer")
]
MINI_OUT = Path("docs/results")
START, END = "<!-- mini tables: start -->", "<!-- mini tables: end -->"


def cell(acc: float, low: float, high: float) -> str:
    return f"{acc:.1f} [{low:.1f}, {high:.1f}]"


def method_by_task(acc: pd.DataFrame) -> pd.DataFrame:
    """Method x task cells 'acc [low, high]', a mean over tasks, the seeds pooled, and the mean compute."""
    acc = acc.assign(cell=[cell(a, lo, hi) for a, lo, hi in zip(acc.acc, acc.ci_low, acc.ci_high)])
    table = acc.pivot(index="method", columns="task", values="cell")
    table["mean acc"] = acc.groupby("method").acc.mean().round(1)
    # Methods may have finished different seeds (a partial sweep): say which, beside the pooled numbers.
    table["seeds"] = acc.groupby("method").seeds.agg(lambda s: " / ".join(sorted(set(s))))
    table["tokens / run"] = acc.groupby("method").tokens.mean().round(0)
    table["rollouts / run"] = acc.groupby("method").rollouts.mean().round(0)
    return table.loc[ordered(table.index)]  # the paper's order, each method's writer rows after it


def plot_accuracy(acc: pd.DataFrame, path: Path, title: str) -> None:
    """Grouped bars: a group per task, a bar per method, 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, methods = sorted(set(acc.task)), sorted(set(acc.method))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(tasks)), 4))
    for j, method in enumerate(methods):
        part = acc[acc.method == method].set_index("task").reindex(tasks)
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(tasks))]
        errors = [part.acc - part.ci_low, part.ci_high - part.acc]
        ax.bar(xs, part.acc, width, yerr=errors, capsize=2, label=method)
    ax.set_xticks(range(len(tasks)), [t.split("/")[-1] for t in tasks])
    ax.set_ylabel("test accuracy (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=4)
    _save(fig, path)


def plot_compute(acc: pd.DataFrame, path: Path) -> None:
    """Accuracy against optimization tokens: one point per (method, task, model), a colour per method and a
    marker per (task, model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    markers = "osD^v<>p*h"
    methods = sorted(set(acc.method))
    groups = sorted(set(zip(acc.task, acc.model)))
    for g, (task, model) in enumerate(groups):
        for method in methods:
            part = acc[(acc.task == task) & (acc.model == model) & (acc.method == method)]
            errors = [part.acc - part.ci_low, part.ci_high - part.acc]
            x = part.tokens.clip(lower=1)
            color = f"C{methods.index(method) % 10}"
            ax.errorbar(x, part.acc, yerr=errors, fmt=markers[g % len(markers)], color=color, capsize=2)
    for i, method in enumerate(methods):
        ax.scatter([], [], color=f"C{i % 10}", label=method)
    for g, (task, model) in enumerate(groups):
        ax.scatter([], [], color="grey", marker=markers[g % len(markers)], label=f"{task.split('/')[-1]}, {model}")
    ax.set_xscale("log")
    ax.set_xlabel("optimization tokens per run (generated + forwarded; 1 = none)")
    ax.set_ylabel("test accuracy (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    # No date or version in the file, so the same runs give the same bytes.
    fig.savefig(path, dpi=110, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)


def write_mini(results: pd.DataFrame, out_dir: Path) -> str:
    """docs/results/mini_tables.md (between its markers; the text around them is kept), CSVs and figures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = final_rows(results)
    acc = accuracy_table(rows)
    tests = paired_tests(rows)
    runs = rows[["task", "method", "seed", "model", "eval_model", "n", "acc", "tokens", "rollouts", "final_prompt"]]
    acc.round(3).to_csv(out_dir / "mini_accuracy.csv", index=False)
    tests.round(6).to_csv(out_dir / "mini_paired_tests.csv", index=False)
    runs.round(4).to_csv(out_dir / "mini_runs.csv", index=False)
    own, transfer = acc[acc.model == acc.eval_model], acc[acc.model != acc.eval_model]
    sections = [_mini_table1(own, out_dir), _mini_compute(own, out_dir), _mini_tests(tests)]
    sections += [_mini_table2(transfer, out_dir), _paper_section(), _runs_section(runs)]
    generated = "\n\n".join(s for s in sections if s)
    path = out_dir / "mini_tables.md"
    path.write_text(splice(path.read_text() if path.exists() else "", generated))
    return generated


def _mini_table1(own: pd.DataFrame, out_dir: Path) -> str:
    parts = []
    for model, part in own.groupby("model"):
        figure = f"mini_table1_{model}.png"
        plot_accuracy(part, out_dir / figure, f"optimized and evaluated on {model}")
        table = method_by_task(part)
        parts.append(f"### Table 1 (miniature): optimized and evaluated on {model}\n\n{table.to_markdown()}")
        parts.append(f"![accuracy per method and task, {model}]({figure})")
    return "\n\n".join(parts)


def _mini_compute(own: pd.DataFrame, out_dir: Path) -> str:
    if own.empty:
        return ""
    plot_compute(own, out_dir / "mini_compute.png")
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


def _mini_table2(transfer: pd.DataFrame, out_dir: Path) -> str:
    parts = []
    for (model, eval_model), part in transfer.groupby(["model", "eval_model"]):
        figure = f"mini_table2_{model}_to_{eval_model}.png"
        plot_accuracy(part, out_dir / figure, f"optimized on {model}, evaluated on {eval_model}")
        table = method_by_task(part).drop(columns=["tokens / run", "rollouts / run"])
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


def splice(text: str, generated: str, start: str = START, end: str = END) -> str:
    """Replace what lies between the markers; a file without them gets the block appended."""
    block = f"{start}\n{generated}\n{end}"
    if start in text and end in text:
        return text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    return (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"

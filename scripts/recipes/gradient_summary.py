"""The gradient diagnostic's summary (scripts/recipes/gradient_information.py makes the rows): per pair, the
Spearman correlation of predicted against actual loss change and whether the gradient's top candidate is
among the actual top 3; per (model, task), their means with seeded bootstrap intervals over pairs, and a
random-prediction control. Pure Python on the CSV's rows, so the table is recomputed from the file alone."""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

ACTUALS = ("held", "regenerated")  # (a) reasoning held fixed, (b) reasoning regenerated
TOP = 3


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append rows under the file's header (written from the first rows when the file is new)."""
    new = not path.exists()
    header = list(rows[0]) if new else next(csv.reader(path.open(newline="")))
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    """Pearson correlation of the average ranks; nan when either side is constant or has < 2 values."""
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} predictions against {len(y)} actual values; pass equal lengths")
    rx, ry = average_ranks(x), average_ranks(y)
    mx, my = sum(rx) / len(rx) if rx else 0.0, sum(ry) / len(ry) if ry else 0.0
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def bootstrap_mean(values: list[float], seed: int = 0, n_resamples: int = 2000) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95% percentile bootstrap interval, resampling the values."""
    if not values:
        return math.nan, math.nan, math.nan
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(n_resamples))
    return sum(values) / n, means[int(0.025 * n_resamples)], means[int(0.975 * n_resamples) - 1]


def top_in_top(predicted: list[float], actual: list[float], top: int = TOP) -> bool:
    """Whether the candidate predicted to lower the loss most is among the `top` that actually lower it most."""
    best = min(range(len(predicted)), key=predicted.__getitem__)
    return sorted(actual).index(actual[best]) < top  # ties count in its favour


def random_prediction(n: int, seed: str) -> list[float]:
    """The control: a seeded random order of the same candidates."""
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


@dataclass(frozen=True)
class PairStats:
    n_candidates: int
    spearman: dict[str, float]  # per actual
    control: dict[str, float]  # random predictions' Spearman, per actual
    top_hit: dict[str, bool]
    magnitude: dict[str, float]  # Spearman of |predicted| against |actual|: size of the change, sign aside


def pair_stats(rows: list[dict], key: str) -> PairStats:
    """One pair's statistics from its candidate rows (`key` seeds the random control)."""
    predicted = [float(r["predicted"]) for r in rows]
    control = random_prediction(len(rows), f"control-{key}")
    corr, ctrl, hit, size = {}, {}, {}, {}
    for name in ACTUALS:
        actual = [float(r[name]) for r in rows]
        corr[name], ctrl[name] = spearman(predicted, actual), spearman(control, actual)
        hit[name] = top_in_top(predicted, actual)
        size[name] = spearman([abs(p) for p in predicted], [abs(a) for a in actual])
    return PairStats(len(rows), corr, ctrl, hit, size)


def summarize(rows: list[dict], seed: int = 0) -> dict[str, float]:
    """Per-(model, task) summary of the rows of its pairs: n, mean Spearman with 95% interval per actual and
    for the control, top-1-in-top-3 rate and its random expectation (mean over pairs of min(3, C) / C)."""
    by_pair: dict[str, list[dict]] = {}
    for r in (r for r in rows if r["token"] != ""):  # a pair with no candidate besides the current token
        by_pair.setdefault(str(r["pair"]), []).append(r)
    stats = [pair_stats(rs, f"{rs[0]['model']}-{rs[0]['task']}-{p}") for p, rs in by_pair.items()]
    out: dict[str, float] = {"pairs": len(stats), "candidates": sum(s.n_candidates for s in stats) / max(len(stats), 1)}
    for name in ACTUALS:
        fields = ((name, "spearman"), (f"control_{name}", "control"), (f"magnitude_{name}", "magnitude"))
        for label, field in fields:
            values = [v for s in stats if not math.isnan(v := getattr(s, field)[name])]
            out[f"{label}_rho"], out[f"{label}_low"], out[f"{label}_high"] = bootstrap_mean(values, seed)
        out[f"{name}_top{TOP}"] = sum(s.top_hit[name] for s in stats) / max(len(stats), 1)
    out[f"random_top{TOP}"] = sum(min(TOP, s.n_candidates) / s.n_candidates for s in stats) / max(len(stats), 1)
    measured = [r for r in rows if r["token"] != ""]
    share = len(measured) or 1
    out["predicted_lowers"] = sum(float(r["predicted"]) < 0 for r in measured) / share
    for name in ACTUALS:
        out[f"{name}_raises"] = sum(float(r[name]) > 0 for r in measured) / share
    return out


def interval(summary: dict[str, float], label: str) -> str:
    rho, low, high = (summary[f"{label}_{k}"] for k in ("rho", "low", "high"))
    return "n/a" if math.isnan(rho) else f"{rho:+.2f} [{low:+.2f}, {high:+.2f}]"


def _markdown(columns: list[str], groups: dict[tuple[str, str], list[dict]], cells) -> str:
    """A table with one line per (model, task): `cells(summary)` gives the columns after model and task."""
    lines = ["| " + " | ".join(["model", "task", *columns]) + " |", "|" + "---|" * (len(columns) + 2)]
    for (model, task), rows in sorted(groups.items()):
        lines.append("| " + " | ".join([model, task, *cells(summarize(rows))]) + " |")
    return "\n".join(lines)


def table(groups: dict[tuple[str, str], list[dict]]) -> str:
    """The markdown table: one line per (model, task)."""
    columns = ["pairs", "measured/pair", "rho held (a)", "rho regenerated (b)", "control rho (a)"]
    columns += ["control rho (b)", f"top-1 in top-{TOP} (a)", "(b)", "random"]
    return _markdown(
        columns,
        groups,
        lambda s: [
            str(s["pairs"]),
            f"{s['candidates']:.1f}",
            *(interval(s, k) for k in ("held", "regenerated", "control_held", "control_regenerated")),
            *(f"{s[f'{k}_top{TOP}']:.2f}" for k in ("held", "regenerated", "random")),
        ],
    )


def why_table(groups: dict[tuple[str, str], list[dict]]) -> str:
    """Why the correlation is what it is: whether |predicted| ranks |actual| (the gradient sees how much a
    token moves the loss), and how often a candidate is predicted to lower the loss against how often it
    actually raises it."""
    columns = ["rho of sizes (a)", "rho of sizes (b)", "predicted to lower", "raises the loss (a)", "(b)"]
    return _markdown(
        columns,
        groups,
        lambda s: [
            interval(s, "magnitude_held"),
            interval(s, "magnitude_regenerated"),
            *(f"{s[k]:.2f}" for k in ("predicted_lowers", "held_raises", "regenerated_raises")),
        ],
    )

"""The gradient diagnostic's summary (scripts/recipes/gradient_information.py makes the rows), link by link.

GReaTer's step rests on three links, each read per (prompt, position) pair over its measured candidates:
(1) the gradient's prediction orders the candidates as their exact loss change with the reasoning held
fixed; (2) that held change orders them as the change once the reasoning is regenerated under the new
prompt; (3) the regenerated loss change orders them as the (negated) change in training accuracy. Per pair:
the Spearman correlation of each link, whether the first side's best is among the second side's best 3, and
the same for seeded random orders of the candidates (the control: the mean over CONTROL_ORDERS of them,
so its expectation is exactly the null's, not one draw's luck). Per (model, task): the means over pairs with a 95%
bootstrap interval that resamples prompts, then pairs within them (pairs on one prompt are not independent).
Pure Python on the CSV's rows, so the page is recomputed from the file alone."""

from __future__ import annotations

import csv
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

TOP = 3
# (name, first side, second side): lower is better on both sides; "accuracy_drop" is base_acc - regenerated_acc
LINKS = (
    ("gradient -> held", "predicted", "held"),
    ("held -> regenerated", "held", "regenerated"),
    ("regenerated loss -> accuracy", "regenerated", "accuracy_drop"),
)


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


def nested_bootstrap(
    values: dict[str, list[float]], seed: int = 0, n_resamples: int = 2000
) -> tuple[float, float, float]:
    """(mean, low, high) of the values pooled over groups (prompts), with a 95% percentile interval from
    resampling the groups, then the values within each drawn group."""
    groups = [v for v in values.values() if v]
    pooled = [x for v in groups for x in v]
    if not pooled:
        return math.nan, math.nan, math.nan
    rng = random.Random(seed)
    means = []
    for _ in range(n_resamples):
        drawn = [x for g in rng.choices(groups, k=len(groups)) for x in rng.choices(g, k=len(g))]
        means.append(sum(drawn) / len(drawn))
    means.sort()
    return sum(pooled) / len(pooled), means[int(0.025 * n_resamples)], means[int(0.975 * n_resamples) - 1]


def best_in_top(first: list[float], second: list[float], top: int = TOP) -> bool:
    """Whether the candidate best (lowest) on the first side has fewer than `top` strictly better on the second."""
    best = min(range(len(first)), key=first.__getitem__)
    return sum(x < second[best] for x in second) < top


CONTROL_ORDERS = 200  # random orders per pair: one draw's rho has an sd of about 1/sqrt(candidates), 0.2


def random_order(n: int, seed: str) -> list[float]:
    """One seeded random order of the same candidates."""
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def side(row: dict, name: str) -> float:
    if name == "accuracy_drop":
        return float(row["base_acc"]) - float(row["regenerated_acc"])
    return float(row[name])


@dataclass(frozen=True)
class PairLinks:
    prompt: str
    n_candidates: int
    rho: dict[str, float]
    control: dict[str, float]  # the mean over CONTROL_ORDERS random orders
    hit: dict[str, bool]
    control_hit: dict[str, float]  # the share of the random orders whose best is in the top 3


def pair_links(rows: list[dict], key: str) -> PairLinks:
    """One pair's statistics for every link (`key` seeds the random controls)."""
    controls = [random_order(len(rows), f"control-{key}-{k}") for k in range(CONTROL_ORDERS)]
    rho, ctrl, hit, ctrl_hit = {}, {}, {}, {}
    for name, a, b in LINKS:
        first, second = [side(r, a) for r in rows], [side(r, b) for r in rows]
        rho[name], hit[name] = spearman(first, second), best_in_top(first, second)
        ctrl[name] = statistics.fmean(spearman(c, second) for c in controls)
        ctrl_hit[name] = statistics.fmean(best_in_top(c, second) for c in controls)
    return PairLinks(rows[0]["prompt_ids"], len(rows), rho, ctrl, hit, ctrl_hit)


def summarize(rows: list[dict], seed: int = 0) -> dict[str, float]:
    """Per (model, task): pairs, prompts, candidates per pair, and per link the mean rho with its nested
    interval, the control's, and the top-1-in-top-3 rates (the link's and the control's)."""
    by_pair: dict[str, list[dict]] = {}
    for r in (r for r in rows if r["token"] != ""):  # a pair with no candidate besides the current token
        by_pair.setdefault(str(r["pair"]), []).append(r)
    stats = [pair_links(rs, f"{rs[0]['model']}-{rs[0]['task']}-{p}") for p, rs in by_pair.items()]
    out: dict[str, float] = {
        "pairs": len(stats),
        "prompts": len({s.prompt for s in stats}),
        "candidates": sum(s.n_candidates for s in stats) / max(len(stats), 1),
    }
    for name, _, _ in LINKS:
        for label, field in ((name, "rho"), (f"control {name}", "control")):
            by_prompt: dict[str, list[float]] = {}
            for s in stats:
                if not math.isnan(value := getattr(s, field)[name]):
                    by_prompt.setdefault(s.prompt, []).append(value)
            out[f"{label}_rho"], out[f"{label}_low"], out[f"{label}_high"] = nested_bootstrap(by_prompt, seed)
        out[f"{name}_top{TOP}"] = sum(s.hit[name] for s in stats) / max(len(stats), 1)
        out[f"control {name}_top{TOP}"] = sum(s.control_hit[name] for s in stats) / max(len(stats), 1)
    return out


def interval(summary: dict[str, float], label: str) -> str:
    rho, low, high = (summary[f"{label}_{k}"] for k in ("rho", "low", "high"))
    return "n/a" if math.isnan(rho) else f"{rho:+.2f} [{low:+.2f}, {high:+.2f}]"


def table(groups: dict[tuple[str, str], list[dict]]) -> str:
    """The markdown table: one line per (model, task) and link."""
    columns = ["model", "task", "pairs (prompts)", "candidates/pair", "link", "rho", "random control"]
    columns += [f"top-1 in top-{TOP}", "random"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for (model, task), rows in sorted(groups.items()):
        s = summarize(rows)
        for name, _, _ in LINKS:
            cells = [model, task, f"{s['pairs']} ({s['prompts']})", f"{s['candidates']:.1f}", name]
            cells += [interval(s, name), interval(s, f"control {name}")]
            cells += [f"{s[f'{name}_top{TOP}']:.2f}", f"{s[f'control {name}_top{TOP}']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

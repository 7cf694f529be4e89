"""Method comparisons at the (task, seed) cell level (greater/compare): the interval's coverage in simulated
experiments with a between-cell spread, the sign-flip test against brute-force enumeration, the power against
a Monte Carlo t test, and cells paired from prediction files."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from greater.compare.cells import Cell, by_task, cells_of, paired_cell
from greater.compare.method_level import (
    ALL_TASKS,
    cluster_interval,
    compare,
    mcnemar_exact,
    sign_flip_p,
    stratified_mean,
)
from greater.compare.power import (
    cells_needed,
    decompose,
    detectable_difference,
    pooled_sd,
    question_variance,
    t_test_power,
)

TASKS, SEEDS, QUESTIONS = 3, 5, 342


def simulated_cells(rng: np.random.Generator, effect: float, spread: float) -> list[Cell]:
    """One experiment: every cell has its own true difference (effect + N(0, spread) points) around a base
    accuracy, and its questions are answered independently by the two arms (binomial noise)."""
    cells = []
    for task in range(TASKS):
        base = rng.uniform(0.25, 0.55)
        for seed in range(SEEDS):
            d = rng.normal(effect, spread) / 100
            pa, pb = np.clip(base + d / 2, 0.01, 0.99), np.clip(base - d / 2, 0.01, 0.99)
            only_a, only_b, _ = rng.multinomial(
                QUESTIONS, [pa * (1 - pb), pb * (1 - pa), pa * pb + (1 - pa) * (1 - pb)]
            )
            cells.append(Cell(f"t{task}", seed, QUESTIONS, int(only_a), int(only_b)))
    return cells


def pooled_wald(cells: list[Cell]) -> tuple[float, float]:
    """The question-level interval this issue replaces: every (cell, question) pair as a replicate."""
    n = sum(c.pairs for c in cells)
    b, c = sum(x.only_a for x in cells), sum(x.only_b for x in cells)
    d = (b - c) / n
    se = math.sqrt(max((b + c) / n - d * d, 0) / n)
    return 100 * (d - 1.96 * se), 100 * (d + 1.96 * se)


def test_cluster_interval_covers_the_true_effect_and_the_pooled_one_does_not():
    rng = np.random.default_rng(20261207)
    effect, experiments = 3.0, 400
    covered = pooled_covered = 0
    for i in range(experiments):
        cells = simulated_cells(rng, effect, spread=10.0)
        low, high = cluster_interval(by_task(cells), draws=2000, seed=i)
        covered += low <= effect <= high
        p_low, p_high = pooled_wald(cells)
        pooled_covered += p_low <= effect <= p_high
    assert 0.90 <= covered / experiments <= 0.98
    assert pooled_covered / experiments < 0.80


def test_stratified_mean_weighs_tasks_equally():
    diffs = {"a": [10.0, 20.0, 30.0], "b": [0.0]}
    assert stratified_mean(diffs) == pytest.approx((20.0 + 0.0) / 2)


def test_interval_needs_two_cells_per_task_and_is_seeded():
    assert all(math.isnan(x) for x in cluster_interval({"a": [1.0, 2.0], "b": [3.0]}))
    diffs = {"a": [1.0, -4.0, 6.0], "b": [2.0, 9.0, -1.0, 3.0]}
    assert cluster_interval(diffs, seed=3) == cluster_interval(diffs, seed=3)
    low, high = cluster_interval(diffs)
    assert low < stratified_mean(diffs) < high


def test_sign_flip_p_matches_enumeration_over_strata():
    diffs = {"a": [3.0, -1.0, 7.5], "b": [2.0, 4.0, -6.0, 5.0]}
    weights = [1 / 6] * 3 + [1 / 8] * 4
    values = np.array(diffs["a"] + diffs["b"])
    observed = abs(np.dot(values, weights))
    flipped = [abs(np.dot(values * np.array(s), weights)) for s in itertools.product([1, -1], repeat=7)]
    expected = np.mean(np.array(flipped) >= observed - 1e-12)
    assert sign_flip_p(diffs) == pytest.approx(expected)
    assert sign_flip_p({"a": [0.0, 0.0]}) == 1.0


def test_sign_flip_p_beyond_exact_is_a_seeded_monte_carlo():
    diffs = {"a": list(np.linspace(-3, 9, 24))}
    p = sign_flip_p(diffs, seed=1)
    assert p == sign_flip_p(diffs, seed=1)
    t = stats.ttest_1samp(diffs["a"], 0.0).pvalue  # a close reference for a smooth sample
    assert p == pytest.approx(t, abs=0.02)


def test_mcnemar_matches_the_binomial_tail():
    assert mcnemar_exact(4, 1) == pytest.approx(2 * (1 + 5) / 32)
    assert mcnemar_exact(0, 0) == 1.0


def test_compare_rows_per_task_then_over_tasks():
    cells = [Cell("x", s, 100, a, b) for s, (a, b) in enumerate([(10, 2), (8, 8), (12, 3)])]
    cells += [Cell("y", s, 50, a, b) for s, (a, b) in enumerate([(1, 5), (2, 2)])]
    rows = compare(cells)
    assert [r.scope for r in rows] == ["x", "y", ALL_TASKS]
    x, y, both = rows
    assert x.diff == pytest.approx(np.mean([8.0, 0.0, 9.0]))
    assert y.diff == pytest.approx(np.mean([-8.0, 0.0]))
    assert both.diff == pytest.approx((x.diff + y.diff) / 2)
    assert (both.cells, both.pairs, both.only_a, both.only_b) == (5, 400, 33, 20)


def test_detectable_difference_has_the_power_a_monte_carlo_t_test_shows():
    sd, n = 11.0, 12
    d = detectable_difference(sd, [n])
    assert t_test_power(d, sd, [n]) == pytest.approx(0.8, abs=1e-6)
    rng = np.random.default_rng(0)
    samples = rng.normal(d, sd, size=(4000, n))
    rejected = np.mean(stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05)
    assert rejected == pytest.approx(0.8, abs=0.025)
    # large samples: the normal approximation (1.96 + 0.84) * sd / sqrt(n)
    assert detectable_difference(sd, [400]) == pytest.approx(2.8 * sd / 20, rel=0.01)


def test_cells_needed_is_the_first_balanced_count_that_reaches_the_target():
    n = cells_needed(11.0, tasks=3, target=5.0)
    assert n % 3 == 0
    assert detectable_difference(11.0, [n // 3] * 3) <= 5.0 < detectable_difference(11.0, [n // 3 - 1] * 3)


def test_pooled_sd_is_the_within_task_spread():
    diffs = {"a": [1.0, 3.0], "b": [10.0, 14.0, 12.0]}
    assert pooled_sd(diffs) == pytest.approx(math.sqrt((2 + 8) / 3))
    assert math.isnan(pooled_sd({"a": [1.0]}))


def test_cells_pair_prediction_files_by_task_and_seed(tmp_path):
    def predictions(name: str, right: list[bool]) -> str:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"id": str(i), "correct": r}) + "\n" for i, r in enumerate(right)))
        return str(path)

    a = pd.DataFrame(
        {
            "task": ["t", "t"],
            "seed": [0, 1],
            "predictions": [predictions("a0", [1, 1, 0, 0]), predictions("a1", [1, 0])],
        }
    )
    b = pd.DataFrame({"task": ["t"], "seed": [0], "predictions": [predictions("b0", [1, 0, 1, 0])]})
    assert cells_of(a, b) == [Cell("t", 0, 4, 1, 1)]


def test_cells_of_different_test_sizes_pair_on_the_questions_both_have(tmp_path):
    # A (342-question style run) answered ids 0-5; B (a shorter evaluation.n_test run) the first 4 of them
    def predictions(name: str, right: list[int]) -> str:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"id": str(i), "correct": bool(r)}) + "\n" for i, r in enumerate(right)))
        return str(path)

    a = pd.DataFrame({"task": ["t"], "seed": [0], "predictions": [predictions("a", [1, 0, 1, 1, 1, 1])]})
    b = pd.DataFrame({"task": ["t"], "seed": [0], "predictions": [predictions("b", [0, 1, 1, 0])]})
    # shared ids 0-3: A only on 0 and 3, B only on 1; ids 4 and 5 (A right on both) do not count
    assert cells_of(a, b) == [Cell("t", 0, 4, 2, 1)]
    assert cells_of(a, b)[0].difference == 25.0


def test_question_variance_is_the_sample_variance_of_the_per_question_differences():
    a = {str(i): bool(r) for i, r in enumerate([1, 1, 1, 0, 0, 1, 0, 1, 1, 0])}
    b = {str(i): bool(r) for i, r in enumerate([1, 0, 0, 1, 0, 1, 0, 0, 1, 1])}
    cell = paired_cell("t", 0, a, b)
    per_question = [int(a[i]) - int(b[i]) for i in sorted(a)]
    assert question_variance(cell) == pytest.approx(1e4 * np.var(per_question, ddof=1))


def simulated_spread(rng, search_sd: float, questions: int, per_task: int = 100) -> tuple[list[Cell], float]:
    """Cells whose true differences spread by `search_sd` points between searches, each answered on
    `questions` questions by two independent arms; also the mean of their true question variances."""
    cells, noise = [], []
    for task in range(TASKS):
        base = 0.3 + 0.1 * task
        for seed in range(per_task):
            d = rng.normal(4.0, search_sd) / 100
            pa, pb = base + d / 2, base - d / 2
            probs = [pa * (1 - pb), pb * (1 - pa), pa * pb + (1 - pa) * (1 - pb)]
            only_a, only_b, _ = rng.multinomial(questions, probs)
            cells.append(Cell(f"t{task}", seed, questions, int(only_a), int(only_b)))
            noise.append(1e4 * (probs[0] + probs[1] - d * d) / questions)
    return cells, float(np.mean(noise))


def test_decompose_recovers_the_question_noise_and_between_search_spread_it_was_simulated_with():
    rng = np.random.default_rng(35)
    cells, noise = simulated_spread(rng, search_sd=8.0, questions=QUESTIONS)
    parts = decompose(cells)
    assert parts.total_sd == pytest.approx(pooled_sd(by_task(cells)))
    assert parts.question_sd**2 == pytest.approx(noise, rel=0.05)
    assert parts.search_sd == pytest.approx(8.0, rel=0.1)
    assert parts.total_sd**2 == pytest.approx(parts.question_sd**2 + parts.search_sd**2)
    # the same searches scored on 100 questions: the spread sd_at predicts from the 342-question cells
    fewer, _ = simulated_spread(rng, search_sd=8.0, questions=100)
    assert pooled_sd(by_task(fewer)) == pytest.approx(parts.sd_at(100), rel=0.1)
    assert parts.sd_at(100) > parts.sd_at(QUESTIONS) == pytest.approx(parts.total_sd, rel=1e-9)


def test_decompose_with_no_search_spread_leaves_none_and_needs_two_cells_a_task():
    rng = np.random.default_rng(7)
    cells, noise = simulated_spread(rng, search_sd=0.0, questions=QUESTIONS)
    parts = decompose(cells)
    assert parts.question_sd**2 == pytest.approx(noise, rel=0.05)
    assert parts.search_sd < 0.35 * parts.question_sd  # what little is left is the estimate's own noise
    assert math.isnan(decompose([Cell("t", 0, 10, 3, 1)]).total_sd)


def test_the_readme_comparison_example_runs_on_a_folder_of_runs(tmp_path):
    import re
    import subprocess
    import sys

    from tests.helpers import ROOT
    from tests.test_collect import write_result

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("Comparing two methods on your own runs") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    right = {"greater": [1, 1, 1, 0, 1, 0], "zs_cot": [1, 0, 0, 0, 1, 0]}
    for task in ("bbh/a", "bbh/b"):
        for seed in (0, 1, 2):
            for method, marks in right.items():
                run = tmp_path / "multirun" / f"{task.replace('/', '-')}_{method}_{seed}"
                write_result(run, task, "m", [("m", "final", 0)], method, seed, {"m": marks[seed:] + marks[:seed]})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["bbh/a", "bbh/b", ALL_TASKS]
    assert lines[-1].startswith(f"{ALL_TASKS}: 6 cells, +")

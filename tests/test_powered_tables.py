"""The powered experiment's page (scripts/recipes/powered_tables.py): pooled accuracies, paired counts and the
method-level (per-cell) differences against an independent count of the records' outcomes, the reading of a
comparison, and the same bytes from a copy of the records in another place (what a fresh clone does)."""

import random
import shutil

import pytest

from greater.compare.method_level import MethodDifference, sign_flip_p
from recipes.powered import Job
from recipes.powered_tables import reading, write_powered
from tests.test_collect import write_result

N = 40
ARMS = ("zs_cot", "greater", "random_ranking")


def marks(arm: str, task: str, seed: int) -> list[bool]:
    rng = random.Random(f"{arm}-{task}-{seed}")
    rate = {"zs_cot": 0.3, "greater": 0.6, "random_ranking": 0.5}[arm]
    return [rng.random() < rate for _ in range(N)]


@pytest.fixture
def records(tmp_path):
    root = tmp_path / "repo" / "records"
    for task in ("a", "b"):
        for arm in ARMS:
            for seed in (0, 1):
                job = Job("m", f"synthetic/{task}", arm, seed)
                right = {"m": marks(arm, task, seed)}
                write_result(root / job.key, f"synthetic/{task}", "m", [("m", "final", 0)], arm, seed, right)
    return root


def test_accuracy_and_paired_counts_match_an_independent_count(records, tmp_path):
    import pandas as pd

    out = tmp_path / "out"
    write_powered(records, out, tmp_path / "no_diagnostic.csv")
    acc = pd.read_csv(out / "mini_accuracy.csv").set_index(["task", "arm"])
    expected = sum(sum(marks("greater", "a", s)) for s in (0, 1)) / (2 * N)
    assert acc.loc[("a", "greater"), "acc"] == pytest.approx(100 * expected, abs=1e-3)
    assert acc.loc[("a", "greater"), "n"] == 2 * N
    tests = pd.read_csv(out / "mini_paired_tests.csv").set_index(["vs", "task"])
    b = c = 0
    for task in ("a", "b"):
        for seed in (0, 1):
            ours, theirs = marks("greater", task, seed), marks("zs_cot", task, seed)
            b += sum(o and not t for o, t in zip(ours, theirs))
            c += sum(t and not o for o, t in zip(ours, theirs))
    pooled = tests.loc[("ZS-CoT", "all tasks")]
    assert (pooled["pairs"], pooled["GReaTer only"], pooled["other only"]) == (4 * N, b, c)
    # the method-level estimate: each task's mean cell difference, then the mean over tasks
    per_cell = {
        (t, s): 100 * (sum(marks("greater", t, s)) - sum(marks("zs_cot", t, s))) / N for t in "ab" for s in (0, 1)
    }
    task_means = [(per_cell[(t, 0)] + per_cell[(t, 1)]) / 2 for t in "ab"]
    assert pooled["cells"] == 4
    assert pooled["method_diff"] == pytest.approx(sum(task_means) / 2, abs=0.01)
    assert tests.loc[("ZS-CoT", "a"), "method_diff"] == pytest.approx(task_means[0], abs=0.01)
    assert pooled["method_ci_low"] < pooled["method_diff"] < pooled["method_ci_high"]
    assert pooled["method_p"] == pytest.approx(sign_flip_p({t: [per_cell[(t, 0)], per_cell[(t, 1)]] for t in "ab"}))
    assert set(tests.index.get_level_values("vs")) == {"ZS-CoT", "GReaTer, random ranking"}


def difference(diff: float, low: float, high: float, p: float, cells: int = 15) -> MethodDifference:
    return MethodDifference("all tasks", cells, diff, low, high, p, 0, 0, 0)


def test_the_reading_needs_both_the_interval_and_the_sign_flip_test():
    assert reading(difference(8.0, 2.0, 14.0, 0.01), 6.0) == "GReaTer wins"
    assert reading(difference(-8.0, -14.0, -2.0, 0.01), 6.0) == "GReaTer loses"
    assert reading(difference(2.0, -3.0, 7.0, 0.3), 6.0) == "cannot tell (detects 6.0 points)"
    assert reading(difference(2.0, -3.0, 7.0, 0.3), float("nan")) == "cannot tell (too few cells)"
    # five cells, all one way: the least p a sign-flip test over 5 cells can give is 2/32
    assert reading(difference(25.0, 11.0, 37.0, 0.0625, cells=5), 12.0).startswith("GReaTer wins in every cell")


def test_the_page_is_the_same_bytes_from_a_copy_elsewhere_and_keeps_its_hand_text(records, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    (first / "mini_tables.md").write_text("# Hand-written title\n\nkept\n")
    write_powered(records, first, tmp_path / "none.csv")
    moved = shutil.copytree(records, tmp_path / "elsewhere" / "deeper" / "records")
    second.mkdir()
    (second / "mini_tables.md").write_text("# Hand-written title\n\nkept\n")
    write_powered(moved, second, tmp_path / "none.csv")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert {"mini_accuracy_m.png", "mini_compute.png", "mini_runs.csv"} <= set(names)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    page = (first / "mini_tables.md").read_text()
    assert page.startswith("# Hand-written title\n\nkept\n") and "What the design can detect" in page
    assert str(tmp_path) not in page

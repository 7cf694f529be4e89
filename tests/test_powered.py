"""The powered experiment's jobs and records (scripts/recipes/powered.py): every job's config composes, the order
puts the primary arms first and whole seeds before more seeds, a compacted record reads back to the same
per-example outcomes as its run, a rerun skips what has a record, and the design (recipes/powered_design.py,
powered_cost.py) reads the spread, the best text arm and the cost from the records."""

import gzip
import json

import pytest

from greater.compare.collect import collect, outcomes
from recipes.powered import (
    ARM_ORDER,
    PRIMARY_SEEDS,
    SECONDARY_SEEDS,
    TEST_QUESTIONS,
    Job,
    collect_records,
    compact,
    jobs,
    pending,
)
from recipes.statistics import final_rows, paired_tests
from tests.test_collect import write_result


def test_jobs_run_the_primaries_seed_by_seed_then_the_secondaries():
    listed = jobs({"m": ["synthetic/a", "synthetic/b"]}, ["keep_current", "greater", "zs_cot", "gepa"], [0, 1])
    assert [(j.seed, j.arm, j.task) for j in listed[:6]] == [
        (0, "zs_cot", "synthetic/a"),
        (0, "zs_cot", "synthetic/b"),
        (0, "greater", "synthetic/a"),
        (0, "greater", "synthetic/b"),
        (1, "zs_cot", "synthetic/a"),
        (1, "zs_cot", "synthetic/b"),
    ]
    assert [(j.seed, j.arm) for j in listed[8:]] == [(0, "keep_current")] * 2 + [(0, "gepa")] * 2 + [
        (1, "keep_current")
    ] * 2 + [(1, "gepa")] * 2
    own = jobs({"m": ["synthetic/a"]}, ARM_ORDER)
    assert sorted({j.seed for j in own if j.arm == "exact_ranking"}) == list(PRIMARY_SEEDS)
    assert sorted({j.seed for j in own if j.arm == "no_reasoning"}) == list(SECONDARY_SEEDS)
    assert {j.arm for j in own[: len(PRIMARY_SEEDS) * 5]} == {
        "zs_cot",
        "greater",
        "random_ranking",
        "exact_ranking",
        "pe2",
    }
    # the best text arm, once the records show one, is the primary one
    assert "gepa" in {j.arm for j in jobs({"m": ["synthetic/a"]}, ARM_ORDER, best_text="gepa")[:5]}


@pytest.mark.parametrize("arm", ARM_ORDER)
def test_every_arm_composes_with_the_protocol(arm):
    from greater import compose
    from greater.lifecycle.validate import validate

    job = Job("smollm2-135m", "synthetic/compare_numbers", arm, 3)
    cfg = compose([o for o in job.overrides() if not o.startswith("hydra.")])
    validate(cfg)
    assert (cfg.seed, cfg.task.n_dev, cfg.task.n_train, cfg.max_reasoning_tokens) == (3, 50, 8, 64)
    assert (cfg.task.n_test, cfg.evaluation.n_test) == (0, TEST_QUESTIONS)  # the first of all 342
    assert cfg.optimizer.budget.max_rollouts == 352
    if arm == "apo_writer":
        assert "gemma3-270m" in str(cfg.optimizer.writer)  # the other embedded model writes


def test_a_record_reads_back_like_its_run_and_is_not_rerun(tmp_path):
    marks = [True, False, True, True, False]
    runs, records = tmp_path / "runs", tmp_path / "records"
    for arm, right in (("greater", marks), ("zs_cot", marks[::-1])):
        job = Job("m", "synthetic/t", arm, 0)
        write_result(runs / job.key, "synthetic/t", "m", [("m", "final", 0)], optimizer=arm, correct={"m": right})
        compact(runs / job.key, records / job.key)
    run_file = runs / "m/t/greater/seed0/predictions_m_final.jsonl"
    record_file = records / "m/t/greater/seed0/predictions_m_final.jsonl.gz"
    assert not record_file.with_suffix("").exists()
    with gzip.open(record_file, "rt") as handle:
        assert set(json.loads(handle.readline())) == {"id", "parsed_answer", "correct"}  # no reasoning text
    assert outcomes(record_file.with_suffix("")) == outcomes(run_file)
    from_records = paired_tests(final_rows(collect_records(records)))
    from_runs = paired_tests(final_rows(collect(runs)))
    assert from_records[["pairs", "greater_only", "baseline_only"]].values.tolist() == [
        [5, 2, 2]
    ]  # q0, q3 only GReaTer; q1, q4 only ZS-CoT
    assert from_records.p_value.tolist() == from_runs.p_value.tolist()
    every = jobs({"m": ["synthetic/t"]}, ["zs_cot", "greater", "pe2"], [0])
    assert [j.arm for j in pending(every, records)] == ["pe2"]


def test_the_design_reads_the_between_cell_spread_and_cost_from_the_records(tmp_path):
    from greater.compare.power import cells_needed, decompose, detectable_difference
    from recipes.powered_cost import cost_rows, measured_minutes
    from recipes.powered_design import PRIOR_SD, TARGET, arm_cells, comparison_rows, final_rows

    records = tmp_path / "records"
    # seeds 0-2 of one task: GReaTer right on 5, 3 and 4 of 5 questions, ZS-CoT on 2 each -> +60, +20, +40 points
    for seed, right in enumerate([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]):
        for arm, marks in (("greater", right), ("zs_cot", [1, 1, 0, 0, 0])):
            job = Job("m", "synthetic/t", arm, seed)
            rows = [("m", "final", 0)]
            write_result(records / job.key, "synthetic/t", "m", rows, optimizer=arm, correct={"m": marks})
    listed = comparison_rows({"m": ["synthetic/t"]}, records)
    assert [r["kind"] for r in listed[:4]] == ["primary"] * 3 + ["primary (best text method, provisional)"]
    assert {r["kind"] for r in listed[4:]} == {"secondary"}
    rows = {r["comparison"]: r for r in listed}
    seen = rows["GReaTer vs zs_cot"]
    assert seen["cells done"] == 3 and seen["cells planned"] == len(PRIMARY_SEEDS)
    assert seen["between-cell sd"] == "20.0 (measured on 3 cells)"  # sd of 60, 20, 40
    assert seen["detects, done"] == f"{detectable_difference(20.0, [3]):.1f}"
    parts = decompose(arm_cells(final_rows(records), "m", "zs_cot"))
    assert seen[f"sd at {TEST_QUESTIONS} questions"] == round(parts.sd_at(TEST_QUESTIONS), 1)
    assert seen[f"cells for {TARGET:g} points"] == cells_needed(parts.sd_at(TEST_QUESTIONS), 1, TARGET)
    assert rows["GReaTer vs pe2"]["between-cell sd"] == f"{PRIOR_SD:.1f} (prior)"
    assert rows["GReaTer vs pe2"]["cells done"] == 0
    assert rows["GReaTer vs gepa"]["cells planned"] == len(SECONDARY_SEEDS)
    # 9 s a job, 1 s of it scoring 5 questions: at 10 questions, 10 s
    assert measured_minutes(records, "m", "greater", 10) == pytest.approx([10 / 60] * 3)
    costs = {r["arm"]: r for r in cost_rows({"m": ["synthetic/t"]}, records)}
    assert costs["greater"]["progress"] == f"3 of {len(PRIMARY_SEEDS)} cells"
    minutes = (9 + TEST_QUESTIONS / 5 - 1) / 60
    assert costs["greater"][f"minutes per job at {TEST_QUESTIONS} questions"] == f"m: {minutes:.1f} (measured (3 jobs))"
    assert costs["pe2"][f"minutes per job at {TEST_QUESTIONS} questions"].endswith("(as greater: measured (3 jobs))")


def test_the_best_text_arm_is_the_one_with_the_best_accuracy_on_the_cells_text_arms_share(tmp_path):
    from recipes.powered_design import best_text_arm, final_rows

    records = tmp_path / "records"
    assert best_text_arm(None) == "pe2"  # provisional: no record yet
    # pe2 right on 2 of 4 in seeds 0 and 1; gepa on 3 of 4 in seed 0 only, and on 0 of 4 in seed 2 (pe2 has none)
    runs = [("pe2", 0, [1, 1, 0, 0]), ("pe2", 1, [1, 1, 0, 0]), ("gepa", 0, [1, 1, 1, 0]), ("gepa", 2, [0, 0, 0, 0])]
    for arm, seed, marks in runs:
        job = Job("m", "synthetic/t", arm, seed)
        write_result(records / job.key, "synthetic/t", "m", [("m", "final", 0)], arm, seed, {"m": marks})
    assert best_text_arm(final_rows(records)) == "gepa"  # 75% against 50% on the shared seed 0; all: 37.5 vs 50


def test_the_plan_prices_the_pending_primary_jobs_and_what_fits(tmp_path):
    from recipes.powered_cost import fitting, hours_of
    from recipes.powered_plan import design_page

    # 9 s a job, 1 s of it scoring 5 questions: at TEST_QUESTIONS questions, 8 + TEST_QUESTIONS / 5 seconds
    records = tmp_path / "records"
    for arm in ("greater", "zs_cot"):
        job = Job("m", "synthetic/t", arm, 0)
        write_result(records / job.key, "synthetic/t", "m", [("m", "final", 0)], arm, 0, {"m": [1, 0, 1, 0, 1]})
    minutes = (8 + TEST_QUESTIONS / 5) / 60
    todo = 5 * len(PRIMARY_SEEDS) - 2  # five primary arms on one task, less the two on record
    page = design_page({"m": ["synthetic/t"]}, records)
    assert f"pending jobs need {todo * minutes / 2 / 60:.1f} hours at 2 jobs at once" in page
    assert f"| zs_cot         | primary   | 1 of {len(PRIMARY_SEEDS)} cells" in page
    # two jobs at once: 60, 60, 120 and 60 minutes end at 0.5, 1, 2 and 2.5 hours
    listed = [Job("m", "synthetic/t", arm, 0) for arm in ("greater", "zs_cot", "pe2", "gepa")]
    cost = {
        ("m", "greater"): (60.0, ""),
        ("m", "zs_cot"): (60.0, ""),
        ("m", "pe2"): (120.0, ""),
        ("m", "gepa"): (60.0, ""),
    }
    assert fitting(listed, cost, hours=2.0) == listed[:3]
    assert hours_of(listed, cost) == 2.5

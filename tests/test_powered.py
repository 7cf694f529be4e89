"""The powered experiment's jobs and records (scripts/recipes/powered.py): every job's config composes, the order
puts seeds before arms, a compacted record reads back to the same per-example outcomes as its run, and a rerun
skips what has a record."""

import gzip
import json

import pytest

from greater.compare.collect import collect, outcomes
from recipes.powered import ARM_ORDER, Job, collect_records, compact, jobs, pending
from recipes.statistics import final_rows, paired_tests
from tests.test_collect import write_result


def test_jobs_run_every_seed_of_an_arm_before_the_next_arm():
    listed = jobs({"m": ["synthetic/a", "synthetic/b"]}, ["greater", "zs_cot"], [0, 1])
    assert [(j.arm, j.seed, j.task) for j in listed][:4] == [
        ("zs_cot", 0, "synthetic/a"),
        ("zs_cot", 0, "synthetic/b"),
        ("zs_cot", 1, "synthetic/a"),
        ("zs_cot", 1, "synthetic/b"),
    ]
    assert {j.arm for j in listed[4:]} == {"greater"}


@pytest.mark.parametrize("arm", ARM_ORDER)
def test_every_arm_composes_with_the_protocol(arm):
    from greater import compose
    from greater.lifecycle.validate import validate

    job = Job("smollm2-135m", "synthetic/compare_numbers", arm, 3)
    cfg = compose([o for o in job.overrides() if not o.startswith("hydra.")])
    validate(cfg)
    assert (cfg.seed, cfg.task.n_dev, cfg.task.n_train, cfg.max_reasoning_tokens) == (3, 50, 8, 64)
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
    from greater.compare.power import cells_needed, detectable_difference
    from recipes.powered_design import PRIOR_SD, comparison_rows, cost_rows

    records = tmp_path / "records"
    # seeds 0-2 of one task: GReaTer right on 5, 3 and 4 of 5 questions, ZS-CoT on 2 each -> +60, +20, +40 points
    for seed, right in enumerate([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]):
        for arm, marks in (("greater", right), ("zs_cot", [1, 1, 0, 0, 0])):
            job = Job("m", "synthetic/t", arm, seed)
            rows = [("m", "final", 0)]
            write_result(records / job.key, "synthetic/t", "m", rows, optimizer=arm, correct={"m": marks})
    rows = {r["comparison"]: r for r in comparison_rows({"m": ["synthetic/t"]}, records)}
    seen = rows["GReaTer vs zs_cot"]
    assert seen["cells done"] == 3 and seen["cells planned"] == 5
    assert seen["between-cell sd"] == "20.0 (measured on 3 cells)"  # sd of 60, 20, 40
    assert seen["detects, done"] == f"{detectable_difference(20.0, [3]):.1f}"
    assert seen["cells for 5 points"] == cells_needed(20.0, 1, 5.0)
    assert rows["GReaTer vs pe2"]["between-cell sd"] == f"{PRIOR_SD:.1f} (prior)"
    assert rows["GReaTer vs pe2"]["cells done"] == 0
    costs = {r["arm"]: r for r in cost_rows({"m": ["synthetic/t"]}, records)}
    assert costs["greater"]["records"] == "3 / 5" and costs["greater"]["minutes per job"] == "0.1"  # 9 s
    assert costs["pe2"]["minutes per job"] == "not measured yet"

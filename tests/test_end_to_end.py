"""The real entry point on the embedded model (SmolLM2-135M-Instruct), in a tiny profile."""

import json

import pytest

from greater.lifecycle.results import RunResult
from tests.helpers import TINY, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    # A weak starting prompt (0% on this task for SmolLM2), so two steps have something to improve.
    proc = run_cli([*TINY, "prompt='Answer with one word.'", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc


def test_default_job_writes_result_history_and_predictions(default_run):
    run_dir, _ = default_run
    result = json.loads((run_dir / "result.json").read_text())
    assert result["initial_prompt"] == "Answer with one word."
    assert result["final_prompt"] != result["initial_prompt"]
    assert result["model"] == "smollm2-135m" and result["task"] == "synthetic/compare_numbers"
    kinds = {row["prompt_kind"]: row for row in result["test"]}
    assert set(kinds) == {"initial", "final"} and all(row["n"] == 4 for row in kinds.values())

    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2]
    assert [h["details"]["position"] for h in history] == [0, 1]
    assert all(set(h["stage_seconds"]) == {"reasoning", "gradient", "proposal", "selection"} for h in history)
    assert history[-1]["best_prompt"] == result["final_prompt"]
    # where the run's wall time went: loading, then optimization (inside until_evaluation), then the test
    seconds = result["seconds"]
    assert seconds["load"] > 0 and seconds["load"] + seconds["optimization"] <= seconds["until_evaluation"] + 0.05
    assert seconds["until_evaluation"] <= seconds["total"]
    assert sum(h["seconds"] for h in history) <= seconds["optimization"] + 0.05

    predictions = [
        json.loads(line) for line in (run_dir / "predictions_smollm2-135m_final.jsonl").read_text().splitlines()
    ]
    assert len(predictions) == 4
    assert sum(p["correct"] for p in predictions) / 4 == pytest.approx(kinds["final"]["acc"])
    assert (run_dir / "config.yaml").exists() and (run_dir / "checkpoint.json").exists()


def test_result_json_reads_back_through_its_schema_and_no_pickle_is_left(default_run):
    run_dir, _ = default_run
    result = RunResult.read(run_dir)  # the versioned schema the console, W&B and the tables read
    assert result.initial_prompt == "Answer with one word." and result.steps == 2
    assert result.row(prompt_kind="final").n == 4 and 0.0 <= result.row(prompt_kind="final").acc <= 1.0
    assert not [p.name for p in run_dir.rglob("*") if p.suffix in (".pt", ".pkl", ".pickle")]


def test_custom_csv_with_renamed_columns_runs_end_to_end(tmp_path):
    data = tmp_path / "pairs.csv"
    rows = [(a, b) for a, b in [(12, 40), (77, 31), (58, 64), (90, 15), (23, 45), (66, 13), (81, 29), (34, 70)]]
    data.write_text("prompt,label\n" + "".join(f'"Which is larger, {a} or {b}?",{max(a, b)}\n' for a, b in rows))
    run_dir = tmp_path / "run"
    proc = run_cli(
        [
            *TINY,
            "task=custom",
            f"task.file={data}",
            "task.question_field=prompt",
            "task.answer_field=label",
            "task.answer_type=integer",
            f"hydra.run.dir={run_dir}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["task"] == "custom" and result["steps"] == 2
    assert (result["split_overlap"], result["dropped_overlap"]) == (0, 0)  # eight distinct questions
    predictions = [
        json.loads(line) for line in (run_dir / "predictions_smollm2-135m_final.jsonl").read_text().splitlines()
    ]
    golds = {str(max(a, b)) for a, b in rows}
    assert len(predictions) == 4 and {p["gold"] for p in predictions} <= golds

"""The run package's seams: the launch value, the run directory (its names, its one atomic writer, the
checkpoint read once), the prediction store's two layers, and the metric names result.json records."""

import ast
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import greater
from greater.evaluation.evaluator import Prediction
from greater.evaluation.store import PredictionStore, read_predictions, write_predictions
from greater.lifecycle import runner
from greater.lifecycle.checkpoint import load_checkpoint, load_counters, load_seconds, save_checkpoint
from greater.lifecycle.launch import Launch
from greater.lifecycle.results import RunResult, TestRow
from greater.lifecycle.rundir import Checkpoint, RunDir, write_atomic
from greater.tasks.base import Example
from tests.helpers import ROOT


def test_the_run_package_never_imports_the_launcher():
    for path in sorted((ROOT / "greater" / "run").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] == "hydra"], f"{path.name} imports {names}"


def test_launch_names_the_sweep_group_and_a_search_without_dev_is_refused():
    assert Launch().group is None and not Launch().multirun
    sweep = Launch(multirun=True, sweep_dir=Path("multirun/2026-11-24/02-27-53"), search=True)
    assert sweep.group == "2026-11-24_02-27-53"
    cfg = greater.compose(["task.n_dev=0"])
    with pytest.raises(ValueError, match=r"task.n_dev=0 leaves none .* set task.n_dev, e.g. task.n_dev=20"):
        runner.prepare(cfg, sweep)
    runner.prepare(cfg, Launch(multirun=True))  # a grid does not read the objective: nothing to refuse
    runner.prepare(greater.compose(["task.n_dev=5"]), sweep)


def test_the_checkpoint_is_one_envelope_with_its_step_count(tmp_path):
    state = {"step": 3, "history": [{}, {}, {}], "prompt_ids": [1, 2]}
    save_checkpoint(tmp_path, "greater", state, {"task.rollouts": 12.0}, 4.5)
    ckpt = RunDir(tmp_path).checkpoint("greater")
    assert ckpt == Checkpoint("greater", state, {"task.rollouts": 12.0}, 4.5, steps_done=3)
    assert load_checkpoint(tmp_path, "greater") == state
    assert load_counters(tmp_path) == {"task.rollouts": 12.0} and load_seconds(tmp_path) == 4.5
    save_checkpoint(tmp_path, "ape", {"nodes": []}, steps_done=7)  # a method that counts its own steps
    assert RunDir(tmp_path).checkpoint().steps_done == 7
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]  # no temporary file left behind


def test_a_checkpoint_from_before_steps_done_still_resumes(tmp_path):
    old = {"version": 2, "method": "opro", "state": {"history": [{}, {}]}, "counters": {}, "seconds": 1.0}
    (tmp_path / "checkpoint.json").write_text(json.dumps(old))
    assert RunDir(tmp_path).checkpoint("opro").steps_done == 2


@pytest.mark.parametrize(
    ("payload", "line"),
    [
        ({"version": 1, "method": "greater", "state": {}}, "has checkpoint version 1, this greater reads 2"),
        (
            {"version": 2, "method": "ape", "state": {}},
            "written by optimizer=ape, not greater; resume with optimizer=ape",
        ),
    ],
)
def test_a_checkpoint_of_another_version_or_method_is_one_line(tmp_path, payload, line):
    (tmp_path / "checkpoint.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=line):
        RunDir(tmp_path).checkpoint("greater")
    with pytest.raises(FileNotFoundError, match="resume=<dir> must name a run directory that has one"):
        load_checkpoint(tmp_path / "elsewhere", "greater")


def test_the_atomic_writer_replaces_whole_files(tmp_path):
    path = write_atomic(tmp_path / "sub" / "a.txt", "first")
    write_atomic(path, b"second")
    assert path.read_text() == "second" and [p.name for p in path.parent.iterdir()] == ["a.txt"]


def prediction(i, correct=True):
    return Prediction(str(i), f"q{i}", "r", "a", "a", "a" if correct else "b", correct)


def store(tmp_path, name, settings=None, saved=None):
    return PredictionStore(RunDir(tmp_path / name), settings or {"seed": 0}, tmp_path, saved)


def test_predictions_round_trip_through_the_one_reader(tmp_path):
    rows = [prediction(1), prediction(2, correct=False)]
    write_predictions(tmp_path / "p.jsonl", rows)
    assert read_predictions(tmp_path / "p.jsonl") == rows and read_predictions(tmp_path / "absent.jsonl") == []


def test_the_sweep_layer_is_shared_by_jobs_with_the_same_settings(tmp_path):
    model = OmegaConf.create({"name": "tiny", "dtype": "float32"})
    examples = [Example(f"q{i}", "a", id=str(i)) for i in range(3)]
    first = store(tmp_path, "job0")
    assert first.missing(model, "Think.", examples) == examples
    first.add(model, "Think.", [prediction(0), prediction(1)])
    assert [ex.id for ex in store(tmp_path, "job1").missing(model, "Think.", examples)] == ["2"]
    assert store(tmp_path, "job1").missing(model, "Other.", examples) == examples  # another prompt
    assert store(tmp_path, "job2", {"seed": 1}).missing(model, "Think.", examples) == examples  # another split
    assert first.write("tiny", "final", [prediction(0)]) == "predictions_tiny_final.jsonl"
    assert read_predictions(tmp_path / "job0" / "predictions_tiny_final.jsonl") == [prediction(0)]


def test_the_run_layer_keeps_what_a_finished_run_saved_for_the_same_prompt(tmp_path):
    run = RunDir(tmp_path / "run")
    write_predictions(run.predictions("tiny", "final"), [prediction(0)])
    row = TestRow("tiny", "final", 1.0, 0.2, 1.0, 1, 0, 3.0, run.predictions_name("tiny", "final"))
    saved = result([row])
    model = OmegaConf.create({"name": "tiny"})
    kept = PredictionStore(run, {}, None, saved)
    assert list(kept.known(model, "final prompt")) == ["0"] and kept.saved_seconds("tiny", "final prompt") == 3.0
    assert kept.known(model, "initial prompt") == {}  # not what was evaluated
    assert PredictionStore(run, {}, None, None).known(model, "final prompt") == {}  # other answer settings


def result(rows):
    return RunResult(
        task="t",
        model="tiny",
        optimizer="greater",
        seed=0,
        initial_prompt="initial prompt",
        final_prompt="final prompt",
        train={"n": 2, "initial_acc": 0.5, "final_acc": 1.0, "metric": "exact_match"},
        test=rows,
        steps=1,
        seconds={"total": 1.0},
        dev_acc=0.5,
    )


def test_result_json_names_every_metric_and_reads_older_files(tmp_path):
    row = TestRow("tiny", "final", 1.0, 0.2, 1.0, 1, 0, 3.0, "predictions_tiny_final.jsonl")
    result([row]).write(tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["test"][0]["metric"] == "parsed" and data["dev_metric"] == "exact_match"
    assert data["train"]["metric"] == "exact_match" and data["test"][0]["acc"] == 1.0  # the keys readers use
    del data["dev_metric"], data["test"][0]["metric"]  # a result.json written before the names
    older = RunResult.from_dict(data)
    assert older.row().acc == 1.0 and older.row().metric == "parsed"

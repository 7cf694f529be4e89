"""Collecting result files into one table (greater/compare/collect.py, scripts/collect.py): malformed files
skipped, per-example outcomes read back."""

import json
import logging

from greater.compare.collect import collect, collect_all, outcomes
from greater.lifecycle.results import RunResult, TestRow
from greater.writers import writer_usage
from tests.recipes import load_script


def write_result(path, task, model, rows, optimizer="greater", seed=0, correct=None, compute=None, writer=None):
    """A run directory. `correct`: {eval_model: [bool per example]} writes predictions files for final rows
    (example ids "q0", "q1", ...) and takes n and acc from them. `writer`: a text method's writer (a
    greater.writers object), recorded as the runner records it."""
    path.mkdir(parents=True)
    compute = compute or {"task.tokens_generated": 100, "optimizer.tokens_forwarded": 20, "task.rollouts": 8}
    test = []
    for m, kind, acc in rows:
        marks = (correct or {}).get(m) if kind == "final" else None
        file = f"predictions_{m}_{kind}.jsonl" if marks is not None else None
        if marks is not None:
            lines = [json.dumps({"id": f"q{i}", "correct": c, "parsed_answer": "x"}) for i, c in enumerate(marks)]
            (path / file).write_text("\n".join(lines) + "\n")
            acc = sum(marks) / len(marks)
        test.append(TestRow(m, kind, acc, 0.1, 0.9, len(marks) if marks is not None else 10, 0, 1.0, file))
    RunResult(
        task=task,
        model=model,
        optimizer=optimizer,
        seed=seed,
        initial_prompt="a",
        final_prompt="b",
        train={"n": 4},
        test=test,
        steps=3,
        seconds={"total": 9.0},
        compute=compute,
        writer=writer_usage(writer, compute) if writer is not None else None,
    ).write(path)


def test_collect_one_row_per_run_and_model(tmp_path, caplog):
    write_result(tmp_path / "0_task=a", "a", "m1", [("m1", "initial", 0.2), ("m1", "final", 0.5)])
    write_result(tmp_path / "1_task=b", "b", "m1", [("m1", "final", 0.7), ("m2", "final", 0.6)])
    (tmp_path / "2_broken").mkdir()
    (tmp_path / "2_broken" / "result.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        table = collect(tmp_path)
    assert len(table) == 4
    assert "2_broken" in caplog.text
    final = table[table.prompt_kind == "final"].set_index(["task", "eval_model"])["acc"].to_dict()
    assert final == {("a", "m1"): 0.5, ("b", "m1"): 0.7, ("b", "m2"): 0.6}


def test_cli_writes_csv_and_markdown(tmp_path, capsys):
    main = load_script("collect").main
    write_result(tmp_path / "run", "a", "m1", [("m1", "final", 0.5)])
    assert main([str(tmp_path), "--out", str(tmp_path / "table")]) == 0
    assert (tmp_path / "table.csv").read_text().count("\n") == 2
    assert "| a " in (tmp_path / "table.md").read_text()
    assert main([str(tmp_path / "none")]) == 1


def test_outcomes_read_back_each_example_by_id(tmp_path):
    write_result(tmp_path / "run", "a", "m1", [("m1", "final", 0.0)], correct={"m1": [True, False, True]})
    table = collect(tmp_path)
    assert table.loc[0, "n"] == 3 and abs(table.loc[0, "acc"] - 2 / 3) < 1e-9
    assert outcomes(table.loc[0, "predictions"]) == {"q0": True, "q1": False, "q2": True}


def test_collect_all_joins_the_roots_that_exist(tmp_path):
    write_result(tmp_path / "one" / "run", "a", "m1", [("m1", "final", 0.5)])
    write_result(tmp_path / "two" / "run", "b", "m1", [("m1", "final", 0.7)])
    table = collect_all([tmp_path / "one", tmp_path / "missing", tmp_path / "two"])
    assert sorted(table.task) == ["a", "b"]
    assert collect_all([tmp_path / "missing"]).empty

"""scripts/collect.py: result files to one table, malformed files skipped."""

import logging

from greater.results import RunResult, TestRow
from scripts.collect import collect, main


def write_result(path, task, model, rows, optimizer="greater", seed=0):
    path.mkdir(parents=True)
    RunResult(
        task=task,
        model=model,
        optimizer=optimizer,
        seed=seed,
        initial_prompt="a",
        final_prompt="b",
        train={"n": 4},
        test=[TestRow(m, k, acc, 0.1, 0.9, 10, 0, 1.0) for m, k, acc in rows],
        steps=3,
        seconds={"total": 9.0},
        compute={"task.tokens_generated": 100, "optimizer.tokens_forwarded": 20, "task.rollouts": 8},
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
    write_result(tmp_path / "run", "a", "m1", [("m1", "final", 0.5)])
    assert main([str(tmp_path), "--out", str(tmp_path / "table")]) == 0
    assert (tmp_path / "table.csv").read_text().count("\n") == 2
    assert "| a " in (tmp_path / "table.md").read_text()
    assert main([str(tmp_path / "none")]) == 1

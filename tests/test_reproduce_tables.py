"""scripts/reproduce_tables.py: averages over seeds and tasks, paper columns, transfer rows."""

import pytest

from scripts.collect import collect
from scripts.reproduce_tables import main, table1, table2
from tests.test_collect import write_result


def write(path, task, model, optimizer, seed, rows):
    write_result(path, task, model, [(m, "final", acc) for m, acc in rows], optimizer=optimizer, seed=seed)


@pytest.fixture
def results(tmp_path):
    write(tmp_path / "r1", "bbh/navigate", "gemma2-9b", "greater", 0, [("gemma2-9b", 0.6), ("llama3-8b", 0.5)])
    write(tmp_path / "r2", "bbh/navigate", "gemma2-9b", "greater", 1, [("gemma2-9b", 0.8)])
    write(tmp_path / "r3", "bbh/snarks", "gemma2-9b", "greater", 0, [("gemma2-9b", 0.4)])
    write(tmp_path / "r4", "gsm8k", "gemma2-9b", "zs_cot", 0, [("gemma2-9b", 0.9)])
    return tmp_path


def test_table1_averages_seeds_then_tasks_and_adds_the_paper(results):
    t = table1(collect(results))
    # navigate: mean(60, 80) = 70; snarks: 40; BBH = mean(70, 40) = 55
    assert t.loc["GReaTer", ("gemma2-9b", "BBH")] == 55.0
    assert t.loc["GReaTer", ("gemma2-9b", "BBH (paper)")] == 76.6
    assert t.loc["ZS-CoT", ("gemma2-9b", "GSM8K")] == 90.0
    assert t.loc["ZS-CoT", ("gemma2-9b", "GSM8K (paper)")] == 88.6


def test_table2_has_only_transfer_rows(results):
    t = table2(collect(results))
    assert list(t.index) == [("GReaTer", "gemma2-9b -> llama3-8b")]
    assert t.loc[("GReaTer", "gemma2-9b -> llama3-8b"), "bbh/navigate"] == 50.0


def test_cli_writes_markdown_and_latex(results, tmp_path, capsys):
    assert main([str(results), "--out", str(tmp_path / "tables")]) == 0
    assert "Table 2: transfer" in (tmp_path / "tables.md").read_text()
    assert "\\begin{tabular}" in (tmp_path / "tables.tex").read_text()

"""What a new user meets with their own files and machine (issue 37): files saved with a byte-order mark and
CRLF line endings, answers that do not fit task.answer_type, examples past the model's context window and
`--cfg job --resolve`. Each row of docs/bad_inputs.md's "Read as they are, or found once the model loads"
table is a test here (EDGE_TESTS); the command-line rows of its first table run in test_config_checks.py."""

from __future__ import annotations

import json
import logging

import pytest

from greater.evaluation.context import ContextError
from greater.lifecycle import runner
from greater.tasks import TaskError, build_task, task_config
from greater.tasks.loaders import load_bbh, load_custom, load_folio, load_gsm8k
from tests.helpers import ROOT, run_cli
from tests.test_runner import composed, tiny_models  # noqa: F401  (a fixture)

EDGE_TESTS = {  # a row of the table -> the test that shows it
    "A CSV, TSV or JSONL file (`task.file`, or the BBH, GSM8K and FOLIO files of `data_dir`; also a `prompt_file=`) "
    "saved with a UTF-8 byte-order mark (several spreadsheet programs write one) or with CRLF or CR line endings": (
        "test_every_loader_reads_a_byte_order_mark_and_any_line_ending"
    ),
    "Answers that do not fit `task.answer_type`": "test_answers_that_do_not_fit_the_type_are_named_or_dropped",
    "An example longer than the model's context window (question and prompt in the chat, plus "
    "`max_reasoning_tokens`, the extractor and the answer)": "test_an_example_past_the_window_ends_before_generating",
    "`python run.py ... --cfg job --resolve` (a Hydra habit)": "test_cfg_job_resolve_prints_the_resolved_config",
}


def edge_rows() -> list[str]:
    text = (ROOT / "docs" / "bad_inputs.md").read_text().split("## Read as they are", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in text.splitlines()]
    return [r[0] for r in rows if len(r) == 2 and r[0] not in ("Case", "---|---")]


def test_every_edge_row_has_its_test():
    assert sorted(edge_rows()) == sorted(EDGE_TESTS)
    assert all(callable(globals().get(name)) for name in EDGE_TESTS.values())


def saved_as(path, text: str, bom: bool = True, newline: str = "\r\n"):
    """`text` (lines ending in \\n) written as a spreadsheet program might: a byte-order mark, CRLF endings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.replace("\n", newline).encode("utf-8"))
    return path


def same(a, b):
    """Examples alike in what they hold and where they came from."""
    return [(e.question, e.answer, e.id, e.where) for e in a] == [(e.question, e.answer, e.id, e.where) for e in b]


@pytest.mark.parametrize(("bom", "newline"), [(True, "\r\n"), (True, "\n"), (False, "\r\n"), (False, "\r")])
def test_every_loader_reads_a_byte_order_mark_and_any_line_ending(tmp_path, bom, newline):
    """Each reader gives the same examples, numbered by the same lines, as from the file saved plainly; a
    quoted CSV cell over two lines and a U+2028 inside a JSON string or a cell stay in their row."""
    files = {
        "d.csv": 'question,answer\nIs 4\u2028even?,Yes\n"Is 5\neven?",No\nIs 6 even?,Yes\n',
        "d.tsv": "question\tanswer\nIs 4 even?\tYes\nIs 5 even?\tNo\n",
        "d.jsonl": '{"question": "Is 4 even?", "answer": "Yes"}\n{"question": "Is 5\u2028even?", "answer": "No"}\n',
        "bbh/navigate.json": json.dumps({"examples": [{"input": "Q1", "target": "Yes"}]}, indent=1) + "\n",
        "gsm8k/train.jsonl": '{"question": "1+1?", "answer": "s\\n#### 2"}\n{"question": "2+2?", "answer": "#### 4"}\n',
        "gsm8k/test.jsonl": '{"question": "3+3?", "answer": "#### 6"}\n',
        "folio/folio-train.jsonl": '{"premises": "A.\\nB.", "conclusion": "C.", "label": "True"}\n',
        "folio/folio-validation.jsonl": '{"premises": ["A."], "conclusion": "D.", "label": "Unknown"}\n',
    }
    for name, text in files.items():
        saved_as(tmp_path / "plain" / name, text, bom=False, newline="\n")
        saved_as(tmp_path / "saved" / name, text, bom=bom, newline=newline)
    loaders = [
        lambda d, f=f: load_custom(f"{d}/{f}", "question", "answer", "", "") for f in ("d.csv", "d.tsv", "d.jsonl")
    ]
    loaders += [lambda d: load_bbh("navigate", d, ""), lambda d: load_gsm8k(d, ""), lambda d: load_folio(d, "")]
    for load in loaders:
        plain, saved = load(str(tmp_path / "plain")), load(str(tmp_path / "saved"))
        for a, b in zip(plain, saved, strict=True):
            assert [(e.question, e.answer, e.id) for e in a or []] == [(e.question, e.answer, e.id) for e in b or []]
            where = [e.where.replace("/plain/", "/saved/") for e in a or []]
            assert where == [e.where for e in b or []] and all(where)
    rows = load_custom(f"{tmp_path}/saved/d.csv", "question", "answer", "", "")[0]
    assert [e.where.rsplit(" ", 1)[1] for e in rows] == ["2", "4", "5"]  # the lines a record ends on


def test_a_prose_file_reads_a_byte_order_mark_and_crlf(tmp_path):
    from greater import cli

    path = saved_as(tmp_path / "prompt.txt", "First think.\nThen answer.\n")
    assert cli.file_overrides([f"prompt_file={path}"]) == ['prompt="First think.\nThen answer."']


def test_a_spreadsheet_csv_runs_end_to_end(tmp_path, tiny_models):  # noqa: F811
    rows = "".join(f'"Which is larger, {n} or {n + 3}?",{n + 3}\n' for n in range(8))
    data = saved_as(tmp_path / "export.csv", "question,answer\n" + rows)
    runner.run(composed(tmp_path / "run", "task=custom", f"task.file={data}", "task.answer_type=integer"))
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["train"]["n"] == 4 and result["test"][0]["n"] == 3


def test_answers_that_do_not_fit_the_type_are_named_or_dropped(tmp_path, caplog):
    data = saved_as(tmp_path / "d.csv", "question,answer\nQ1,8\nQ2,four\nQ3,3\nQ4,two\nQ5,5\nQ6,6\n")
    cfg = task_config("custom", file=str(data), answer_type="integer", n_train=2, n_test=2)
    with pytest.raises(TaskError) as caught:
        build_task(cfg, None, seed=0)
    line = str(caught.value)
    assert line.startswith(f"{data} line 3: the answer 'four' is not of task.answer_type=integer (and 1 more")
    assert "task.skip_bad_rows=true" in line and "\n" not in line
    with caplog.at_level(logging.WARNING):
        task = build_task(
            task_config("custom", file=str(data), answer_type="integer", n_train=2, n_test=2, skip_bad_rows=True),
            None,
            seed=0,
        )
    assert len(task.train + task.test) == 4
    assert (
        f"dropped 2 example(s) whose answer is not of task.answer_type=integer; first: {data} line 3: 'four'"
        in caplog.text
    )
    # a benchmark file: its known errata are dropped with the warning; a type that fits nothing is the error
    examples = [{"input": f"Q{i}", "target": "(A)" if i % 2 else "(B)"} for i in range(8)] + [
        {"input": "Q", "target": "Up"}
    ]
    saved_as(tmp_path / "bbh" / "navigate.json", json.dumps({"examples": examples}), bom=False, newline="\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        task = build_task(task_config("bbh/navigate", answer_type="choice", n_train=2, n_test=2), str(tmp_path), seed=0)
    assert (
        "dropped 1 example(s) whose answer is not of task.answer_type=choice; "
        f"first: {tmp_path}/bbh/navigate.json example 9: 'Up'" in caplog.text
    )
    with pytest.raises(
        TaskError, match=r"navigate\.json example 1: the answer '\(B\)' is not of task\.answer_type=integer"
    ):
        build_task(task_config("bbh/navigate", answer_type="integer", n_train=2, n_test=2), str(tmp_path), seed=0)


def test_an_example_past_the_window_ends_before_generating(tmp_path, tiny_models, monkeypatch):  # noqa: F811
    """The tiny model has 512 positions; a question of 600 characters (600 byte tokens) does not fit."""
    from greater.engine.passes import Passes

    def no_generation(*args, **kwargs):
        raise AssertionError("generated before the context check")

    monkeypatch.setattr(Passes, "greedy", no_generation)
    rows = [f"What is {n} plus one?,{n + 1}\n" for n in range(7)]
    rows.insert(2, "x" * 600 + ",1\n")
    data = saved_as(tmp_path / "d.csv", "question,answer\n" + "".join(rows), bom=False, newline="\n")
    cfg = composed(tmp_path / "run", "task=custom", f"task.file={data}", "task.answer_type=integer", "task.n_test=0")
    with pytest.raises(ContextError) as caught:
        runner.run(cfg)
    line = str(caught.value)
    n = int(line.split(" is ", 1)[1].split()[0])  # its chat with the prompt: the question's 600 tokens and more
    assert line.startswith(f"example '{data} line 4' is {n} tokens with its chat and the prompt, ") and n > 600
    assert "with max_reasoning_tokens=4 and " in line and "more than the 512 positions of model smollm2-135m" in line
    assert "\n" not in line and " (and " not in line  # the one long example
    assert not (tmp_path / "run" / "history.jsonl").exists()


def test_cfg_job_resolve_prints_the_resolved_config(tmp_path):
    proc = run_cli(["--cfg", "job", "--resolve", f"hydra.run.dir={tmp_path}/run"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"output_dir: {tmp_path}/run\n" in proc.stdout and "${" not in proc.stdout
    assert not (tmp_path / "run").exists()  # printing the config runs nothing

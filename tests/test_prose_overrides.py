"""Prompts as users write them (issue 23): an override Hydra's lexer cannot read gets one line with a spelling
that works, and `prompt_file=PATH` (and `task.extractor_file=`, ...) reads the text from a file."""

import json
import os
import shlex
import subprocess
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

import greater
from greater import cli
from greater.lifecycle.results import RunResult
from greater.models.language_model import LanguageModel
from tests.helpers import ROOT
from tests.tiny import tiny_language_model

TEXT = "Let's think: step [1], then (2).\nAnswer with a number."
TINY = ["task.n_test=2", "task.n_train=2", "max_reasoning_tokens=4", "logger.plots=false"]


def evaluate_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled"}
    env.pop("GREATER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "greater.evaluate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_an_apostrophe_gets_one_line_with_the_command_to_copy(tmp_path):
    # what `python -m greater.evaluate task=synthetic/word_problem prompt=Let\'s\ think\ step\ by\ step.` passes
    proc = evaluate_cli("task=synthetic/word_problem", "prompt=Let's think step by step.", f"hydra.run.dir={tmp_path}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("error: prompt: Hydra cannot read this value") and "prompt_file=PATH" in line
    command = line.split("; run: ", 1)[1].rsplit(" (or ", 1)[0]
    words = shlex.split(command)  # what the shell passes when the suggested command is pasted
    assert words[:3] == ["python", "-m", "greater.evaluate"] and words[3] == "task=synthetic/word_problem"
    assert words[5] == f"hydra.run.dir={tmp_path}"
    assert greater.compose([words[4]], config_name="evaluate").prompt == "Let's think step by step."
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize(
    "text", ["Let's go.", 'He said "hi", it\'s fine', "a \\ b \\", "x ${y} $z", TEXT, "tab\there: [a] {b}"]
)
def test_file_text_reaches_the_config_exactly(text, tmp_path):
    path = tmp_path / "p.txt"
    path.write_text(text + "\n", encoding="utf-8")  # the trailing newline an editor adds is dropped
    args = cli.file_overrides(["task=synthetic/word_problem", f"prompt_file={path}", f"task.extractor_file={path}"])
    cfg = greater.compose(args, config_name="evaluate")
    assert cfg.prompt == text and cfg.task.extractor == text


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (None, "prompt_file={path}: no such file; give the path of a UTF-8 text file holding the text"),
        ("\n", "prompt_file={path}: the file is empty; write the text in it"),
        (b"caf\xe9", "prompt_file={path}: not UTF-8 text (unexpected end of data at byte 3); save it as UTF-8"),
    ],
)
def test_a_missing_empty_or_binary_file_is_one_line(content, line, tmp_path):
    path = tmp_path / "p.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError)) as caught:
        cli.file_overrides([f"prompt_file={path}"])
    assert cli.error_line(caught.value) == line.format(path=path)


def test_a_file_and_a_value_for_one_key_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"both set prompt; keep one of them"):
        cli.file_overrides([f"prompt_file={tmp_path}/p.txt", "prompt=Think."])


def test_a_missing_prompt_file_stops_the_command_with_one_line(tmp_path):
    proc = evaluate_cli("task=synthetic/word_problem", f"prompt_file={tmp_path / 'p.txt'}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and lines == [
        f"error: prompt_file={tmp_path / 'p.txt'}: no such file; give the path of a UTF-8 text file holding the text"
    ]


def test_prompt_file_evaluates_like_the_same_prompt_from_python(tmp_path, monkeypatch):
    """The command line with prompt_file= (in this process) and greater.run with the text: one tiny model."""

    def tiny(cfg, cache_dir=None, usage=None):
        lm = tiny_language_model(seed=0, usage=usage)
        lm.name = cfg.name
        return lm

    monkeypatch.setattr(LanguageModel, "from_config", staticmethod(tiny))
    path = tmp_path / "prompt.txt"
    path.write_text(TEXT + "\n", encoding="utf-8")
    common = ["task=synthetic/word_problem", *TINY, f"cache_dir={tmp_path / 'cache'}"]
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # the command line sets it; restored after the test
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = greater.compose([*common, f"output_dir={tmp_path / 'api'}"], config_name="evaluate")
    cfg.prompt = TEXT
    greater.run(cfg)

    argv = ["greater-evaluate", *common, f"prompt_file={path}", f"hydra.run.dir={tmp_path / 'cli'}"]
    monkeypatch.setattr(sys, "argv", argv)
    try:
        cli.evaluate_main()
    finally:
        GlobalHydra.instance().clear()  # Hydra's main leaves itself initialized; later composes start afresh

    by_cli, by_api = RunResult.read(tmp_path / "cli"), RunResult.read(tmp_path / "api")
    assert by_cli.final_prompt == by_api.final_prompt == TEXT
    assert [(r.acc, r.n) for r in by_cli.test] == [(r.acc, r.n) for r in by_api.test]

    def predictions(run):
        return (run / "predictions_smollm2-135m_final.jsonl").read_text().splitlines()

    rows = [json.loads(line) for line in predictions(tmp_path / "cli")]
    assert predictions(tmp_path / "cli") == predictions(tmp_path / "api") and len(rows) == 2
    assert by_cli.test[0].acc == sum(r["correct"] for r in rows) / 2

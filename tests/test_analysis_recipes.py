"""The scripts are recipes over scripts/recipes: the facts they share live once (task lists, method names,
the sweeps written from the lists), they reach into no path hack, and every command line the README and the
docs show still parses."""

import argparse
import re
import shlex
from pathlib import Path

import pytest

from greater.optimizers.registry import builtin_names
from recipes import sweeps
from recipes.methods import METHOD_NAMES, METHOD_ORDER, display_name
from recipes.paper import BBH_TASKS, PAPER_BBH_TASKS, PAPER_TASKS, benchmark
from tests.recipes import SCRIPTS, load_script

ROOT = Path(__file__).resolve().parents[1]


def test_the_bbh_list_is_the_tasks_configured():
    assert list(BBH_TASKS) == sorted(p.stem for p in (ROOT / "conf" / "task" / "bbh").glob("[!_]*.yaml"))
    assert len(PAPER_BBH_TASKS) == 21 and set(PAPER_BBH_TASKS) < set(BBH_TASKS)
    assert PAPER_TASKS[-2:] == ("gsm8k", "folio") and len(PAPER_TASKS) == 29
    assert benchmark("bbh/word_sorting") == "BBH (not in the paper's 21)" and benchmark("bbh/snarks") == "BBH"


def test_the_library_holds_no_experiment():
    """greater/ imports none of scripts/recipes, names no committed result and reads no path relative to the
    working directory's docs/; greater.analysis (where the experiments lived) is gone."""
    for path in sorted((ROOT / "greater").rglob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) recipes\b", text, re.M), path
        assert "docs/results" not in text and "powered" not in text, path
    with pytest.raises(ModuleNotFoundError):
        __import__("greater.analysis")


def test_every_sweep_file_is_written_from_the_task_lists(tmp_path):
    assert sweeps.stale(ROOT / "conf") == []  # else: python scripts/sweeps.py
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "bbh.yaml").write_text("# @package _global_\nhydra: {}\n")
    assert len(sweeps.stale(tmp_path)) == 3  # a changed file and two missing ones
    assert load_script("sweeps").main(["--check"]) == 0  # the checkout's own files
    assert sweeps.write(tmp_path) and sweeps.stale(tmp_path) == []
    line = next(x for x in (tmp_path / "sweep" / "paper_bbh21.yaml").read_text().splitlines() if "task:" in x)
    assert line.split(":", 1)[1].strip().split(",") == [f"bbh/{t}" for t in PAPER_BBH_TASKS]


def test_every_built_in_method_has_one_display_name():
    assert set(METHOD_NAMES) == set(builtin_names())  # no name for a method that does not exist (greater_plus)
    assert list(METHOD_ORDER) == list(METHOD_NAMES.values())
    assert display_name("greater") == "GReaTer" and display_name("my_plugin") == "my_plugin"


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_a_script_is_a_recipe(script):
    text = (SCRIPTS / script).read_text()
    assert "sys.path" not in text and not re.search(r"^\s*(from|import) scripts\b", text, re.M)
    assert not re.search(r"\blm\._\w", text)  # no private attribute of the model wrapper


def documented_commands() -> list[str]:
    """Every `python scripts/<name>.py ...` with arguments in README.md, docs/ and the Makefile: the lines of
    code blocks (joined across a trailing backslash) and inline code spans."""
    commands = []
    for path in [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text().replace("\\\n", " ")
        commands += re.findall(r"python scripts/\w+\.py[^`\n]*", text)
    return sorted({c.split(" #")[0].strip() for c in commands})


class Parsed(Exception):
    pass


@pytest.mark.parametrize("command", documented_commands())
def test_every_documented_command_line_still_parses(command, monkeypatch):
    _, path, *argv = shlex.split(command)
    if not argv and path.endswith("ablation.py"):
        pytest.skip("named in prose only (its --task is required)")
    script = load_script(Path(path).stem)
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)  # an unknown or missing argument exits here with argparse's error
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(Parsed):
        script.main(argv)

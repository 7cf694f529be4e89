"""The README's "Adding a method" example, as written: its module runs as a method on the tiny model, and the
module with its pyproject.toml, installed as a package of its own, is a method of `python run.py` through the
`greater.optimizers` entry points (the door the built-ins use), listed by --help."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from greater.lifecycle.context import context_for
from greater.optimizers.registry import builtin_names, config_classes
from tests.helpers import TINY, run_cli
from tests.tiny import tiny_language_model

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str, language: str) -> str:
    block = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", README.read_text(), re.S)
    assert block, f"README lost its {marker} block"
    return block.group(1)


@pytest.fixture
def drop_word():
    namespace: dict = {}
    exec(compile(readme_block("method-example", "python"), "README:drop_word", "exec"), namespace)
    return namespace


def test_readme_method_runs(drop_word, parity_task):
    tiny_lm = tiny_language_model(seed=0)  # fresh counters
    optimizer = drop_word["DropWordOptimizer"](drop_word["DropWordConfig"](n_steps=2))
    assert optimizer.name == "drop_word"
    records = []

    class Collect:
        def on_step_end(self, record):
            records.append(record)

    context = context_for(
        tiny_lm, parity_task, prompt="Think very carefully now.", max_reasoning_tokens=4, callbacks=[Collect()]
    )
    result = optimizer.optimize(tiny_lm, parity_task, context)
    assert result.method == "drop_word" and result.initial_prompt == "Think very carefully now."
    # Each step removes at most one word from the best prompt, and the best never gets worse.
    assert len(result.final_prompt.split()) >= 4 - len(records)
    assert [r.step for r in records] == list(range(1, len(records) + 1))
    scores = [r.best_score for r in records]
    assert scores == sorted(scores)
    # Every prompt it scored went through the shared scorer's cache: one rollout per (prompt, example).
    assert tiny_lm.usage.of("task").rollouts == len(context.scorer.cache)


def test_the_built_ins_come_through_the_entry_points():
    classes = config_classes()
    assert set(builtin_names()) == {"greater", "zs_cot", "ape", "apo", "pe2", "opro", "textgrad", "gepa"}
    for name in builtin_names():
        assert classes[name]().name == name
        assert classes[name].implementation.startswith("greater.optimizers.")


@pytest.mark.slow
def test_a_third_party_package_is_a_method_of_the_command_line(tmp_path):
    source, target = tmp_path / "src", tmp_path / "site"
    (source / "my_methods").mkdir(parents=True)
    (source / "my_methods" / "__init__.py").write_text("")
    (source / "my_methods" / "drop_word.py").write_text(readme_block("method-example", "python"))
    (source / "pyproject.toml").write_text(readme_block("method-package", "toml"))
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*pip, str(target), str(source)], check=True, capture_output=True, text=True)
    env = {"PYTHONPATH": str(target)}
    listed = run_cli(["--help"], **env)
    assert re.search(r"^optimizer: .*\bdrop_word\b", listed.stdout, re.M), listed.stdout[-2000:]
    run_dir = tmp_path / "run"
    args = [a for a in TINY if a.startswith(("task.", "max_", "logger."))]
    proc = run_cli(["optimizer=drop_word", "optimizer.n_steps=2", *args, f"hydra.run.dir={run_dir}"], **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["optimizer"] == "drop_word" and result["test"][0]["n"] == 4
    steps = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert 1 <= len(steps) <= 2 and len(result["final_prompt"].split()) >= len(result["initial_prompt"].split()) - 2

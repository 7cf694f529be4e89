"""The Python API: `greater.compose` checks like the command line, `load_task` splits like a run,
`import greater` stays light, and the README's Python example runs as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

import greater

ROOT = Path(__file__).resolve().parents[1]


def test_compose_applies_overrides_and_names_the_run_directory():
    cfg = greater.compose(["task=bbh/navigate", "optimizer.topk=5", "seed=3"])
    assert (cfg.task.name, cfg.optimizer.topk, cfg.seed) == ("bbh/navigate", 5, 3)
    run_dir = Path(cfg.output_dir)
    assert run_dir.parts[0] == "outputs" and run_dir.name.endswith("_bbh-navigate_smollm2-135m")
    assert greater.compose(["output_dir=/tmp/x"]).output_dir == "/tmp/x"


@pytest.mark.parametrize("override", ["optimizer.topkk=5", "optimizer.topk=many", "model=gpt-5"])
def test_compose_rejects_typos_and_wrong_types(override):
    with pytest.raises(ConfigCompositionException):
        greater.compose([override])


def test_load_task_takes_sizes_and_seed_like_a_run():
    a = greater.load_task("synthetic/compare_numbers", n_train=4, n_test=10, seed=1)
    b = greater.load_task("synthetic/compare_numbers", n_train=4, n_test=10, seed=1)
    c = greater.load_task("synthetic/compare_numbers", n_train=4, n_test=10, seed=2)
    assert (len(a.train), len(a.test)) == (4, 10)
    assert not {ex.question for ex in a.train} & {ex.question for ex in a.test}
    assert a.train == b.train and a.train != c.train


def test_import_greater_does_not_load_torch_and_names_its_exports():
    code = "import greater, sys; print('torch' in sys.modules, 'LanguageModel' in dir(greater))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "True"]
    with pytest.raises(AttributeError, match="no attribute 'Optimiser'"):
        greater.Optimiser  # noqa: B018


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## From Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=900, env=_env()
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "->" in out.stdout and re.search(r"test accuracy \d\.\d\d over 10", out.stdout)


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_greater_run_is_the_run_function_whatever_is_imported():
    """`greater.run(cfg)` (the README's Python example) is the runner's function; the lifecycle package has
    a name of its own, so importing it (as every optimizer does) shadows nothing."""
    import greater.lifecycle.rundir  # what importing any optimizer does
    import greater.lifecycle.runner

    assert greater.run is greater.lifecycle.runner.run and greater.run.__module__ == "greater.lifecycle.runner"

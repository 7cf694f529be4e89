"""`pip install .` (not editable) into a fresh virtual environment gives working `greater` and
`greater-evaluate` commands and the Python API, run from a directory outside the checkout: the configs ship
inside the wheel. No network: the new environment borrows this one's installed dependencies."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # about a minute: a build, an install and three fresh interpreters


def _source_copy(dest: Path) -> Path:
    """The files a user's clone has (tracked and new, not ignored), so the build writes nothing here."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in listed:
        if (ROOT / name).is_file() and not name.startswith(("tests/", "docs/", "outputs/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    target_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Dependencies (torch, hydra, setuptools, ...) come from this environment, after the new one's own packages.
    (target_site / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    source = _source_copy(tmp_path_factory.mktemp("src"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return env_dir


def test_greater_cfg_job_works_outside_the_checkout(installed, tmp_path):
    proc = subprocess.run(
        [installed / "bin" / "greater", "--cfg", "job", "task=bbh/navigate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "name: bbh/navigate" in proc.stdout and "loader: bbh" in proc.stdout
    bad = subprocess.run(
        [installed / "bin" / "greater-evaluate", "evaluation.mode=genrate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "evaluation.mode" in bad.stderr


def test_python_api_uses_the_installed_configs(installed, tmp_path):
    code = (
        "import greater, greater.config as c;"
        "cfg = greater.compose(['task=bbh/navigate', 'model=gemma3-270m']);"
        "from greater.models.registry import model_names;"
        "print(greater.__file__, c.conf_dir(), cfg.task.loader, cfg.model.name, len(model_names()))"
    )
    proc = subprocess.run(
        [installed / "bin" / "python", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    module, conf, loader, model, n_models = proc.stdout.split()
    assert str(installed) in module and str(installed) in conf and Path(conf).name == "conf"
    assert (loader, model) == ("bbh", "gemma3-270m") and int(n_models) >= 2

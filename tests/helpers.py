"""Shared helpers for tests that run the real entry point in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()

# A tiny profile of the default job: a couple of steps, a handful of examples, short reasoning.
TINY = [
    "optimizer.n_steps=2",
    "optimizer.topk=6",
    "optimizer.n_groups=2",
    "optimizer.group_size=2",
    "task.n_train=4",
    "task.n_test=4",
    "max_reasoning_tokens=24",
    "logger.plots=false",
]


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled", **env}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The first non-empty line of stderr (where Hydra and greater put the one-line reason)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "Warning" not in line]
    return lines[0] if lines else ""

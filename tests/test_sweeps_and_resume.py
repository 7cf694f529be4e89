"""Multirun sweeps and killed-then-resumed runs, through the real entry point on the embedded model."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from scripts.collect import collect
from tests.helpers import ROOT, TINY, run_cli

pytestmark = pytest.mark.slow


def test_two_by_two_multirun_with_submitit_local(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "threads=1",  # four jobs share two cores: one torch thread each
        "hydra/launcher=local",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        "optimizer.n_steps=1",
        "seed=0,1",
        "optimizer.topk=4,8",
    ]
    proc = run_cli(args, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(sweep.rglob("result.json"))
    assert len(results) == 4
    table = collect(sweep)
    finals = table[table.prompt_kind == "final"]
    assert len(finals) == 4 and set(finals.seed) == {0, 1}
    # run directories name their overrides
    names = [p.parent.name for p in results]
    for k in (4, 8):
        for s in (0, 1):
            assert sum(f"optimizer.topk={k}," in n and f"seed={s}," in n for n in names) == 1


def history_steps(run_dir):
    path = run_dir / "history.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


def test_a_killed_run_resumes_to_the_same_prompt_and_history(tmp_path):
    common = [*TINY, "optimizer.n_steps=4", "evaluation.evaluate_initial=false", "task.n_test=2"]
    straight = tmp_path / "straight"
    assert run_cli([*common, f"hydra.run.dir={straight}"]).returncode == 0

    killed = tmp_path / "killed"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *common, f"hydra.run.dir={killed}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while len(history_steps(killed)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # killed, not asked: no handler runs
    proc.wait()
    assert 2 <= len(history_steps(killed)) < 4 and not (killed / "result.json").exists()

    resumed = run_cli([f"resume={killed}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((straight / "result.json").read_text())
    b = json.loads((killed / "result.json").read_text())
    assert b["final_prompt"] == a["final_prompt"] and b["steps"] == 4

    def comparable(run_dir):
        rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert comparable(killed) == comparable(straight)

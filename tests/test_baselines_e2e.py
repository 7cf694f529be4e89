"""Each baseline's CPU profile through the real entry point on the embedded model, shrunk to one step."""

import json

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow

SHRINK = [
    "optimizer.n_steps=1",
    "task.n_train=4",
    "task.n_test=2",
    "max_reasoning_tokens=16",
    "logger.plots=false",
    "threads=1",
]


@pytest.mark.parametrize("method", ["ape", "apo", "pe2", "textgrad", "opro"])
def test_cpu_profile_runs_end_to_end(method, tmp_path):
    proc = run_cli([f"optimizer={method}_cpu", *SHRINK, f"hydra.run.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["optimizer"] == method and result["steps"] == 1
    assert result["compute"]["optimizer.generations"] > 0 and result["compute"]["task.rollouts"] > 0
    assert set(result["extra"]["proposals"]) == {"accepted", "rejected", "rejected_total"}
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["method"] for h in history] == [method] and history[0]["model_calls"]
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert checkpoint["method"] == method and checkpoint["state"]["step"] == 1

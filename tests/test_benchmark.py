"""scripts/benchmark.py on a tiny model: the three patterns do the same tokens, and the summary has its keys."""

import argparse

import pytest
import torch

from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
from greater.testing import tiny_language_model
from scripts import benchmark


@pytest.fixture(scope="module")
def run():
    from greater.tasks.base import Example, Task

    examples = [Example(f"Is {n} even?", "Yes" if n % 2 == 0 else "No", id=str(n)) for n in range(3)]
    task = Task("parity", train=examples, test=[], initial_prompt="Think step by step.", answer_type="yes_no")
    lm = tiny_language_model(seed=0)
    opt = GreaterOptimizer(GreaterConfig(topk=6, n_groups=2, group_size=2, min_candidates=3, token_filter="ascii"))
    args = argparse.Namespace(
        model="tiny", task="parity", n_train=3, tokens=6, position=1, repeats=1, pattern=list(benchmark.PATTERNS)
    )
    return benchmark.summarize(benchmark.run_patterns(lm, task, opt, args), args, lm), lm


@pytest.fixture(scope="module")
def summary(run):
    return run[0]


def test_every_pattern_generates_the_same_reasoning_tokens(summary):
    generated = {p: sum(row["generated"] for row in stages.values()) for p, stages in summary["stages"].items()}
    assert generated["ours"] == generated["reference"] == generated["floor"] > 0
    assert summary["settings"]["candidates"] >= 1


def test_summary_has_the_ratios_the_readme_quotes(summary):
    assert summary["speedup_vs_reference"] > 0 and summary["ratio_to_floor"] > 0
    # a later step skips the engine's reasoning stage (cached), so it is faster against the same reference
    ours = summary["stages"]["ours"]
    later = sum(row["seconds"] for stage, row in ours.items() if stage not in ("reasoning", "prefixes"))
    reference = sum(row["seconds"] for row in summary["stages"]["reference"].values())
    assert summary["speedup_vs_reference_steady"] == pytest.approx(reference / later)
    assert summary["equal_results"] is True  # re-scoring with reuse gives the rollouts of re-scoring from scratch
    for stages in summary["stages"].values():
        assert all(row["seconds"] >= 0 and row["peak_rss_mb"] > 0 for row in stages.values())
    assert set(summary["stages"]["ours"]) == {"prefixes", "reasoning", "gradient", "proposal", "selection"}


def test_the_reference_pattern_leaves_the_model_frozen(run):
    # reference_step turns weight gradients on for its backward passes; the model must come back frozen
    lm = run[1]
    assert not lm.model.training
    assert not any(p.requires_grad or p.grad is not None for p in lm.model.parameters())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_device_cuda_without_a_gpu_says_so_in_one_line():
    with pytest.raises(SystemExit, match=r"^--device cuda: torch sees no CUDA device here"):
        benchmark.load(benchmark.parse(["--device", "cuda"]))


def test_only_the_engine_reads_the_prefix_store(run):
    # ours fills the store in a stage of its own (the questions' chat, once per run); the reference and floor
    # patterns and the from-scratch re-scoring run without it, and the store is back on afterwards
    summary, lm = run
    ours = summary["stages"]["ours"]
    assert ours["prefixes"]["forwarded"] > 0 and ours["prefixes"]["generated"] == 0
    assert lm.prefixes is not None and len(lm.prefixes.entries) == 3  # one per training question
    assert lm.prefixes.hits > 0  # the last re-scoring (the engine's) read the questions from it


def test_the_floor_always_runs_so_ratio_to_floor_is_always_written():
    # the command names only the reference pattern and expects ratio_to_floor in the JSON
    assert benchmark.parse(["--pattern", "reference"]).pattern == ["ours", "reference", "floor"]
    assert benchmark.parse(["--pattern", "floor", "ours"]).pattern == ["ours", "floor"]

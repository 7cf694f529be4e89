"""Every built-in method's final prompt goes through the one dev pick: a run of each, one step on the tiny model
through the runner, calls `pick_on_dev` once, and result.json's `dev_acc` and `dev_metric` are that call's."""

from __future__ import annotations

import json

import pytest

import greater.evaluation.dev as dev_module
import greater.lifecycle.loop as loop_module
from greater.optimizers.registry import config_classes
from tests.test_baselines import scripted_reply
from tests.test_runner import composed, tiny_models  # noqa: F401 (the fixture)

SIZES = {"n_steps": 1, "n_beam": 1, "n_expand": 2, "batch_size": 2, "train_batch": 4, "n_per_step": 2,
         "n_induce": 2, "n_demos": 2, "reasoning_tokens": 8, "gradient_tokens": 8, "edit_tokens": 8,
         "prompt_tokens": 8, "feedback_tokens": 8, "update_tokens": 8, "n_exemplars": 2, "topk": 4, "n_groups": 2,
         "group_size": 2, "max_metric_calls": 8, "minibatch_size": 2, "reflection_tokens": 8}  # fmt: skip
METHODS = ["greater", "ape", "apo", "pe2", "textgrad", "opro", "gepa", "zs_cot"]


def reply(messages, max_new_tokens, temperature=0.0, n=1, seed=None):
    """The writer's replies (the task model writes): scripted, in each meta-prompt's format."""
    fenced = ["```\nTrack each move in order, then answer.\n```"]
    return [fenced * n if "```" in m else [scripted_reply(m, seed or 0, i) for i in range(n)] for m in messages]


@pytest.fixture
def spied(monkeypatch, tiny_models):  # noqa: F811 (the fixture)
    """Every call of the dev pick, wherever it is reached from: (candidates, the pick)."""
    calls = []

    def spy(scorer, prompts, dev, evaluation):
        pick = real(scorer, prompts, dev, evaluation)
        calls.append(([scorer.lm.decode(list(p)) for p in prompts], pick))
        return pick

    real = dev_module.pick_on_dev
    monkeypatch.setattr(dev_module, "pick_on_dev", spy)
    monkeypatch.setattr(loop_module, "pick_on_dev", spy)
    from greater.models.language_model import LanguageModel

    load = LanguageModel.from_config

    def scripted(cfg, cache_dir=None, usage=None):
        lm = load(cfg, cache_dir, usage=usage)
        lm.complete = reply
        return lm

    monkeypatch.setattr(LanguageModel, "from_config", staticmethod(scripted))
    return calls


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dev_metric", ["parsed", "teacher_forced"])
def test_each_method_reports_the_one_dev_picks_score(method, dev_metric, tmp_path, spied):
    if method == "gepa":
        pytest.importorskip("gepa")
    from greater.lifecycle.runner import run

    fields = config_classes()[method].__dataclass_fields__
    sizes = [f"optimizer.{k}={v}" for k, v in SIZES.items() if k in fields]
    returned = run(
        composed(tmp_path, f"optimizer={method}", *sizes, "task.n_dev=2", f"evaluation.dev_metric={dev_metric}")
    )
    result = json.loads((tmp_path / "result.json").read_text())
    assert len(spied) == 1, f"{method}: the dev pick ran {len(spied)} times"
    candidates, pick = spied[0]
    assert pick.dev_acc is not None and pick.dev_metric == ("parsed" if dev_metric == "parsed" else "exact_match")
    assert (result["dev_acc"], result["dev_metric"]) == (pick.dev_acc, pick.dev_metric) and returned == pick.dev_acc
    assert result["final_prompt"] == candidates[pick.index]
    assert result["optimizer"] == method and (method == "gepa" or result["steps"] == (method != "zs_cot"))


def test_without_a_dev_split_the_pick_takes_the_first_candidate_and_reports_none(tmp_path, spied):
    from greater.lifecycle.runner import run

    run(composed(tmp_path, "optimizer=ape", "optimizer.n_steps=1", "optimizer.n_induce=2", "task.n_dev=0"))
    result = json.loads((tmp_path / "result.json").read_text())
    (candidates, pick), = spied  # fmt: skip
    assert pick.index == 0 and result["final_prompt"] == candidates[0]
    assert result["dev_acc"] is None and result["dev_metric"] is None

"""The runner with the real composed config, tiny models standing in for the real ones."""

import json

import pytest
from hydra import compose, initialize_config_dir

from greater.config_store import register_configs
from greater.models.language_model import LanguageModel
from tests.helpers import ROOT
from tests.tiny import tiny_language_model


def composed(tmp_path, *overrides):
    register_configs()
    search = ["optimizer.n_steps=2", "optimizer.topk=4", "optimizer.n_groups=2", "optimizer.group_size=2"]
    if any(o.startswith("optimizer=") for o in overrides):
        search = []  # another optimizer has other keys
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                *search,
                "task.n_train=4",
                "task.n_test=3",
                "max_reasoning_tokens=4",
                "logger.plots=false",
                f"output_dir={tmp_path}",
                f"cache_dir={tmp_path / 'cache'}",
                *overrides,
            ],
        )
    return cfg


@pytest.fixture
def tiny_models(monkeypatch):
    loaded = []

    def fake_from_config(cfg, cache_dir=None, usage=None):
        loaded.append(cfg.name)
        lm = tiny_language_model(seed=len(loaded), usage=usage)
        lm.name = cfg.name
        return lm

    monkeypatch.setattr(LanguageModel, "from_config", staticmethod(fake_from_config))
    return loaded


def test_another_model_writes_through_the_optimizer_it_was_built_with(tmp_path, tiny_models):
    """optimizer.writer=<model>: the runner loads it after the task model and builds the optimizer with it; its
    work is in compute under writer.* and in result.json's writer, the task model's "optimizer" role is empty."""
    from greater.lifecycle.runner import run

    overrides = ["optimizer=apo_cpu", "optimizer.n_steps=1", "optimizer.gradient_tokens=4", "optimizer.edit_tokens=4"]
    run(composed(tmp_path, *overrides, "optimizer.writer=gemma3-270m"))
    assert tiny_models == ["smollm2-135m", "gemma3-270m"]
    result = json.loads((tmp_path / "result.json").read_text())
    compute, writer = result["compute"], result["writer"]
    assert compute["writer.generations"] > 0 and not any(k.startswith("optimizer.") for k in compute)
    assert writer["kind"] == "model" and writer["name"] == "gemma3-270m" and writer["role"] == "writer"
    assert writer["calls"] == compute["writer.calls"] and writer["generations"] == compute["writer.generations"]
    assert writer["completion_tokens"] == compute["writer.tokens_generated"]


def test_transfer_writes_one_row_per_model_and_prompt(tmp_path, tiny_models):
    from greater.lifecycle.runner import run

    run(composed(tmp_path, "evaluation.models=[gemma3-270m]"))
    assert tiny_models == ["smollm2-135m", "gemma3-270m"]  # loaded one after the other
    result = json.loads((tmp_path / "result.json").read_text())
    rows = {(r["model"], r["prompt_kind"]) for r in result["test"]}
    assert rows == {(m, k) for m in ("smollm2-135m", "gemma3-270m") for k in ("initial", "final")}
    for model in ("smollm2-135m", "gemma3-270m"):
        lines = (tmp_path / f"predictions_{model}_final.jsonl").read_text().splitlines()
        assert len(lines) == 3
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert len(history) == 2 and result["steps"] == 2


def test_zero_shot_evaluates_the_given_prompt_once(tmp_path, tiny_models):
    from greater.lifecycle.runner import run

    run(composed(tmp_path, "optimizer=zs_cot", "prompt=Check twice."))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["final_prompt"] == result["initial_prompt"] == "Check twice."
    assert result["steps"] == 0 and not (tmp_path / "checkpoint.json").exists()
    assert {r["prompt_kind"] for r in result["test"]} == {"initial", "final"}


def test_every_config_group_option_composes(tmp_path):
    """One compose per option of every group: a broken YAML or a key the schema lacks fails here."""
    options = {
        group: sorted(
            p.relative_to(ROOT / "conf" / group).with_suffix("").as_posix()
            for p in (ROOT / "conf" / group).rglob("*.yaml")
            if not p.name.startswith("_")  # shared bases (task/bbh/_base.yaml), not options of their own
        )
        for group in ("model", "task", "optimizer", "evaluation", "logger", "experiment", "sweep", "hparams_search")
    }
    for group, names in options.items():
        for name in names:
            cfg = composed(tmp_path, f"{group}={name}")
            if group == "model":
                assert cfg.model.name == name
            if group == "task":
                assert cfg.task.name == name or name == "custom"


def test_a_transfer_model_that_cannot_load_keeps_the_other_results(tmp_path, monkeypatch, caplog):
    from greater.lifecycle.runner import run

    def from_config(cfg, cache_dir=None, usage=None):
        if cfg.name == "gemma2-9b":
            raise OSError("google/gemma-2-9b-it is not reachable")
        lm = tiny_language_model(usage=usage)
        lm.name = cfg.name
        return lm

    monkeypatch.setattr(LanguageModel, "from_config", staticmethod(from_config))
    run(composed(tmp_path, "evaluation.models=[gemma2-9b]"))
    result = json.loads((tmp_path / "result.json").read_text())
    assert {r["model"] for r in result["test"]} == {"smollm2-135m"}
    assert "could not load gemma2-9b" in caplog.text


def test_an_unknown_transfer_model_fails_before_any_work(tmp_path, tiny_models):
    from greater.lifecycle.runner import run

    with pytest.raises(ValueError, match="unknown model 'nope'"):
        run(composed(tmp_path, "evaluation.models=[nope]"))
    assert tiny_models == [] and not (tmp_path / "history.jsonl").exists()


@pytest.mark.parametrize(
    ("setting", "metric"),
    [(["task.n_dev=2"], "parsed"), (["task.n_dev=2", "evaluation.dev_metric=teacher_forced"], "exact_match"),
     (["task.n_dev=0"], None)],
)  # fmt: skip
def test_result_json_names_the_dev_metric_beside_the_dev_score(tmp_path, tiny_models, setting, metric):
    from greater.lifecycle.runner import run

    dev_acc = run(composed(tmp_path, "optimizer=zs_cot", *setting))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["dev_acc"] == dev_acc and result["dev_metric"] == metric
    assert (dev_acc is None) == (metric is None)  # a dev score exactly when there is a dev split

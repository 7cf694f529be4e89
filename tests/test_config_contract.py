"""Contracts of the config layer: every setting declares its resume policy, every bound is checked before
anything loads, closed sets are enums with complete tables, the YAML files restate no schema default, and
composing a config never imports torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

import greater
from greater.cli import error_line
from greater.config import (
    EvaluationConfig,
    LoggerConfig,
    ModelConfig,
    Placement,
    Resume,
    RunConfig,
    TaskConfig,
    leaves,
    resume_policy,
)
from greater.lifecycle.validate import ConfigError, bound_error, validate
from greater.optimizers.registry import builtin_names, config_classes
from tests.helpers import ROOT

CONF = ROOT / "conf"
METHODS = sorted(builtin_names())


# ---- resume policy -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [None, *METHODS])
def test_every_leaf_setting_declares_its_resume_policy(method):
    schema = config_classes()[method] if method else None
    found = list(leaves(RunConfig, schema))
    undeclared = [leaf.key for leaf in found if not isinstance(leaf.declared.get("resume"), Resume)]
    assert not undeclared, f"declare resume= on {undeclared} (greater.config.setting)"
    groups = {leaf.key.split(".")[0] for leaf in found if "." in leaf.key}
    assert groups == {"model", "task", "evaluation", "logger", *(["optimizer"] if method else [])}
    assert "optimizer.budget.max_tokens" in {leaf.key for leaf in found} or method is None


def test_settings_that_change_no_result_may_change_on_resume():
    for key in ("loss_batch_size", "prefix_cache_mb", "reuse_reasoning", "batch_size", "batch_tokens", "device"):
        assert resume_policy(f"model.{key}") is Resume.free, key
    for key in ("model.path", "model.dtype", "task.n_train", "task.extra.bbh_task", "seed", "max_reasoning_tokens"):
        assert resume_policy(key) is Resume.fixed, key
    greater_schema = config_classes()["greater"]
    assert resume_policy("optimizer.topk", greater_schema) is Resume.steps
    assert resume_policy("optimizer.budget.max_tokens", greater_schema) is Resume.steps
    assert resume_policy("optimizer.name", greater_schema) is Resume.fixed  # inherited from OptimizerConfig
    assert resume_policy("optimizer.topk") is Resume.fixed  # no method known: refusing is safe
    assert resume_policy("model.no_such_key") is Resume.fixed
    assert resume_policy("output_dir") is Resume.place and resume_policy("resume") is Resume.place
    assert resume_policy("evaluation.models") is Resume.free and resume_policy("logger.wandb") is Resume.free


def test_a_plugin_field_without_a_policy_applies_to_the_steps_to_run():
    from greater.optimizers.base import OptimizerConfig

    @dataclasses.dataclass
    class PluginConfig(OptimizerConfig):
        name: str = "plugin"
        width: int = 3

    assert resume_policy("optimizer.width", PluginConfig) is Resume.steps
    assert resume_policy("optimizer.name", PluginConfig) is Resume.fixed


# ---- bounds ----------------------------------------------------------------------------------------------
def bounded(schema: type | None) -> list[tuple[str, Any, str]]:
    """(key, a value just out of bounds, the bound) for every bounded leaf."""
    out = []
    for leaf in leaves(RunConfig, schema):
        low, above = leaf.declared.get("min"), leaf.declared.get("above")
        if low is not None:
            out.append((leaf.key, low - 1, f">= {low}"))
        if above is not None:
            out.append((leaf.key, above, f"> {above}"))
    return out


@pytest.mark.parametrize("method", METHODS)
def test_validate_refuses_each_setting_just_out_of_bounds(method):
    base = greater.compose([f"optimizer={method}", "output_dir=x"])
    validate(base)  # the shipped profile is within bounds
    cases = bounded(config_classes()[method])
    assert len(cases) > 12
    for key, value, wanted in cases:
        cfg = base.copy()
        OmegaConf.update(cfg, key, value, merge=False)
        with pytest.raises(ConfigError) as caught:
            validate(cfg)
        shown = OmegaConf.select(cfg, key)  # as the schema typed it (a float field shows -1.0)
        assert str(caught.value).startswith(f"{key}={shown}: set it {wanted}"), (key, str(caught.value))


def test_bounds_leave_null_alone_and_name_what_null_means():
    assert bound_error("threads", None, {"min": 1}) is None
    assert bound_error("threads", 0, {"min": 1, "note": "null: torch's default"}) == (
        "threads=0: set it >= 1 (null: torch's default)"
    )
    assert bound_error("optimizer.answer_temperature", 0.0, {"above": 0}) == (
        "optimizer.answer_temperature=0.0: set it > 0"
    )


def test_the_config_dataclasses_no_longer_check_in_their_constructors():
    """One validator: a constructor takes what it is given, validate() refuses it before anything loads."""
    classes = config_classes()
    for method in METHODS:
        assert "__post_init__" not in vars(classes[method]), method
    assert classes["greater"](topk=0).topk == 0


@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_a_blank_starting_prompt_is_refused_with_how_to_pass_one(prompt):
    cfg = greater.compose(["output_dir=x"])
    cfg.prompt = prompt
    with pytest.raises(ConfigError, match=r"at least one token; pass one, e\.g\. prompt=\"Let's think"):
        validate(cfg)
    cfg.prompt, cfg.task.initial_prompt = None, prompt
    with pytest.raises(ConfigError, match=r"^task\.initial_prompt=.*at least one token; set one"):
        validate(cfg)


def test_loss_batch_size_zero_fails_before_the_model_loads(tmp_path, monkeypatch):
    from greater.lifecycle import runner
    from greater.models.language_model import LanguageModel

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(LanguageModel, "from_config", staticmethod(never))
    cfg = greater.compose(["model.loss_batch_size=0", f"output_dir={tmp_path / 'run'}", "logger.plots=false"])
    with pytest.raises(ConfigError, match=r"^model\.loss_batch_size=0: set it >= 1"):
        runner.run(cfg)
    assert not (tmp_path / "run" / "config.yaml").exists()


# ---- closed sets -----------------------------------------------------------------------------------------
def test_every_placement_has_its_meta_prompt_text():
    from greater.optimizers.text import opro, pe2

    for table in (pe2.TEMPLATES, opro.WHERE):
        assert set(table) == set(Placement)
        assert all(isinstance(key, Placement) for key in table)


def test_textgrad_loss_is_a_closed_set():
    from greater.optimizers.text.textgrad import TextGradLoss

    cfg = greater.compose(["optimizer=textgrad", "optimizer.loss=judge", "output_dir=x"])
    assert cfg.optimizer.loss is TextGradLoss.judge and cfg.optimizer.loss == "judge"
    with pytest.raises(Exception) as caught:
        greater.compose(["optimizer=textgrad", "optimizer.loss=judges"])
    assert "Invalid value 'judges', expected one of [exact, judge]" in error_line(caught.value)


# ---- YAML holds only what differs ------------------------------------------------------------------------
GROUP_SCHEMAS: dict[str, type] = {
    "model": ModelConfig,
    "task": TaskConfig,
    "evaluation": EvaluationConfig,
    "logger": LoggerConfig,
}
# Files outside the config owner's reach that restate a default (key: the restated keys); each is a finding
# to fix in the file, after which its entry goes. A new restatement anywhere fails the test.
KNOWN_RESTATEMENTS: dict[str, list[str]] = {}  # none left: every YAML holds only what differs


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def _schema_values(schema: type) -> dict[str, Any]:
    node = OmegaConf.structured(schema)
    return _flat(OmegaConf.to_container(node, resolve=False, enum_to_str=True, throw_on_missing=False))


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _group_of(path: Path) -> str:
    return path.relative_to(CONF).parts[0] if path.parent != CONF else ""


def inherited(path: Path) -> dict[str, Any]:
    """What `path`'s own values would be without it: the schema's defaults, then its defaults list's files."""
    group = _group_of(path)
    if group == "optimizer":
        values: dict[str, Any] = {}
    elif group:
        values = _schema_values(GROUP_SCHEMAS[group])
    else:
        values = {k: v for k, v in _schema_values(RunConfig).items() if k.split(".")[0] not in GROUP_SCHEMAS}
    for entry in _read(path).get("defaults", []):
        if not isinstance(entry, str) or entry == "_self_":
            continue  # a group choice (model: ...) or an override: not this file's parent
        name = entry.split("@")[0]
        if name.endswith("_schema"):  # a method's schema; the others are the group's, already in `values`
            if group == "optimizer":
                values.update(_schema_values(config_classes()[name.removesuffix("_schema")]))
            continue
        parent = (CONF / name.lstrip("/") if name.startswith("/") else CONF / group / name).with_suffix(".yaml")
        values.update({**inherited(parent), **_own(parent)})
    return values


def _own(path: Path) -> dict[str, Any]:
    data = {k: v for k, v in _read(path).items() if k not in ("defaults", "hydra")}
    return _flat(data) if data else {}


def restated(path: Path) -> list[str]:
    base = inherited(path)
    return sorted(key for key, value in _own(path).items() if key in base and base[key] == value)


def config_files() -> list[Path]:
    groups = ("optimizer", *GROUP_SCHEMAS)
    return [
        CONF / "config.yaml",
        CONF / "evaluate.yaml",
        *(p for g in groups for p in sorted((CONF / g).rglob("*.yaml"))),
    ]


def test_the_restatement_check_sees_a_restated_default(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    (conf / "optimizer").mkdir(parents=True)
    (conf / "optimizer" / "ape.yaml").write_text("defaults:\n  - ape_schema\n  - _self_\nn_beam: 4\nn_steps: 9\n")
    (conf / "optimizer" / "ape_cpu.yaml").write_text("defaults:\n  - ape\n  - _self_\nn_steps: 9\nn_beam: 4\n")
    monkeypatch.setattr(sys.modules[__name__], "CONF", conf)
    assert restated(conf / "optimizer" / "ape.yaml") == ["n_beam"]  # the schema's 4; 9 steps differ from 4
    assert restated(conf / "optimizer" / "ape_cpu.yaml") == ["n_beam", "n_steps"]  # as its parent has them
    monkeypatch.undo()
    assert restated(CONF / "optimizer" / "textgrad.yaml") == []  # max_words: 80 differs from the schema's 50


def test_no_yaml_restates_a_schema_default():
    found = {str(p.relative_to(CONF)): restated(p) for p in config_files()}
    found = {name: keys for name, keys in found.items() if keys}
    assert len(config_files()) > 40
    assert found == KNOWN_RESTATEMENTS, (
        "these YAML values equal the default they would get anyway; delete them (the dataclass is the one "
        f"place of a default): {found}"
    )


def test_optimizer_profiles_hold_only_their_defaults_list_and_what_differs():
    for path in sorted((CONF / "optimizer").glob("*.yaml")):
        data = _read(path)
        assert data.get("defaults"), path.name
        assert not restated(path), path.name


# ---- composing stays torch-free --------------------------------------------------------------------------
def _modules_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys; print('loaded:', *(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1].split()[1:]


def test_composing_every_optimizer_leaves_torch_out():
    profiles = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))
    code = (
        "import greater\n"
        "greater.compose([])\n"
        f"for name in {profiles!r}:\n"
        "    greater.compose([f'optimizer={name}'])\n"
        "greater.compose([], config_name='evaluate')\n"
    )
    assert _modules_after(code) == []


def test_run_py_help_leaves_torch_out():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['run.py', '--help']\n"
        "try:\n"
        "    runpy.run_path('run.py', run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    assert not stop.code, stop.code\n"
    )
    assert _modules_after(code) == []

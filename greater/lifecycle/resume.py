"""Continuing a run from its checkpoint.json: which run directory, and which config.

What a continued run may change is each field's resume policy (`Resume`, declared with the field in
greater/config.py and in each method's config dataclass):
- `free`: changes no optimization result (batch sizes, the prefix store, reasoning reuse, the device, threads,
  paths, evaluation, logging): always taken, and a finished run stays finished;
- `steps`: a method's hyperparameter, which applies to the steps still to run: taken, and a finished run
  asked for another value optimizes on from its checkpoint;
- `fixed`: the saved steps were computed with it (the model, the task and its splits, the seed, the reasoning
  length, the method): refused, in one line naming the keys;
- `place`: where the run is (`output_dir`, `resume`), never compared.

`resume=<dir>` continues the run in <dir> with the saved config and this command's `key=value` overrides, a
config group only when it is the saved run's own (up to what may change). `resume=auto` continues the run in
this job's own directory when it holds a checkpoint (what a re-queued cluster job or a rerun of the same
command wants) and starts fresh when it does not; a multirun job does that unless told `resume=...`.
A finished run (result.json) resumed with settings that differ only in `free` ones is not optimized again:
`Resumed.finished` tells the runner to evaluate only what its result lacks.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from greater.config import Resume, RunConfig, leaves, resume_policy
from greater.lifecycle.checkpoint import has_checkpoint
from greater.lifecycle.results import RESULT_NAME
from greater.optimizers.registry import config_classes

log = logging.getLogger(__name__)
CONFIG_NAME = "config.yaml"  # the resolved config of a run, in its directory
# where the run is, not what it computes (the `place` fields: output_dir, resume)
NOT_SETTINGS = tuple(leaf.key for leaf in leaves(RunConfig) if leaf.declared.get("resume") == Resume.place)
GROUPS = ("model", "task", "optimizer", "evaluation", "logger")
GLOBAL_GROUPS = ("experiment", "hparams_search", "sweep")


class ResumeError(ValueError):
    """A resume that cannot be honoured; the message names the keys and what to do."""


@dataclass
class Resumed:
    cfg: DictConfig  # the config to run with
    run_dir: Path  # where the run writes
    from_checkpoint: bool  # False: a fresh start
    finished: bool = False  # a finished run: evaluate what its result.json lacks, do not optimize again


def resolve(cfg: DictConfig, overrides: list[str], multirun: bool = False) -> Resumed:
    """The config and directory of this run; `overrides` are the command's own (`key=value`)."""
    mode = cfg.resume if cfg.resume is not None else ("auto" if multirun else None)
    if mode is None:
        return Resumed(cfg, Path(cfg.output_dir), False)
    resumed = Resumed(cfg, Path(cfg.output_dir), False) if mode == "auto" else _from_dir(cfg, Path(mode), overrides)
    if is_finished(resumed.run_dir, resumed.cfg):
        log.info("resume: %s holds a finished run; only what its result.json lacks is evaluated", resumed.run_dir)
        return Resumed(resumed.cfg, resumed.run_dir, has_checkpoint(resumed.run_dir), finished=True)
    return _auto(cfg) if mode == "auto" else resumed


def is_finished(run_dir: Path, cfg: DictConfig) -> bool:
    """`run_dir` holds a result.json written with `cfg`'s settings, up to how it is evaluated or logged.

    A key that only one side has (a setting added to greater after the run, or removed since) does not count:
    the run finished with the settings it had."""
    if not (run_dir / RESULT_NAME).exists() or not (run_dir / CONFIG_NAME).exists():
        return False
    changed = changed_keys(saved_config(run_dir), cfg, both_sides=True)
    return all(policy(key, cfg) is Resume.free for key in changed)


def _auto(cfg: DictConfig) -> Resumed:
    run_dir = Path(cfg.output_dir)
    if not has_checkpoint(run_dir):
        return Resumed(cfg, run_dir, False)
    saved = saved_config(run_dir)
    refused = [key for key in changed_keys(saved, cfg) if not honoured(key, cfg)]
    if refused:
        raise ResumeError(
            f"resume=auto: {run_dir} holds the checkpoint of a run with other settings "
            f"({_describe(saved, cfg, refused)}); give this run another directory, or delete its checkpoint.json"
        )
    log.info("resume=auto: continuing the run in %s from its checkpoint", run_dir)
    return Resumed(cfg, run_dir, True)


def _from_dir(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> Resumed:
    saved = typed(saved_config(run_dir))
    wanted: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for override in overrides:
        key = override.split("=", 1)[0]
        if key.startswith(("hydra.", "resume")) or key in NOT_SETTINGS:
            continue
        if key.startswith(("+", "~")) or key in GLOBAL_GROUPS:
            raise ResumeError(
                f"resume={run_dir} keeps the saved run's config; `{override}` cannot apply mid-run; drop it"
            )
        if key in GROUPS:  # a group choice is honoured when it is the saved run's own (up to honoured keys)
            changed = [f"{key}.{k}" for k in changed_keys(saved[key], cfg[key]) if not honoured(f"{key}.{k}", saved)]
            if changed:
                raise ResumeError(
                    f"resume={run_dir}: `{override}` is not the saved run's {key} "
                    f"({_describe(saved, cfg, changed[:3])}); drop it, or start a new run"
                )
            groups[key] = cfg[key]  # what differs is what a run may change: take the group as chosen
            continue
        wanted[key] = OmegaConf.select(cfg, key)
    _check_wanted(saved, wanted, run_dir)
    for key, value in [*groups.items(), *wanted.items()]:
        OmegaConf.update(saved, key, value, merge=False)
    saved.resume, saved.output_dir = str(run_dir), str(run_dir)
    return Resumed(saved, run_dir, True)


def _check_wanted(saved: DictConfig, wanted: dict[str, Any], run_dir: Path) -> None:
    unknown = [key for key in wanted if OmegaConf.select(saved, key, default=_ABSENT) is _ABSENT]
    if unknown:
        raise ResumeError(f"resume={run_dir}: the saved run's config has no {', '.join(unknown)}; drop it")
    refused = [k for k, v in wanted.items() if not honoured(k, saved) and plain(OmegaConf.select(saved, k)) != plain(v)]
    if refused:
        shown = ", ".join(f"{k}={plain(wanted[k])} (saved: {plain(OmegaConf.select(saved, k))})" for k in refused)
        raise ResumeError(
            f"resume={run_dir} cannot change {shown}: the saved steps were computed with the saved value; "
            "drop the override, or start a new run"
        )


_ABSENT = object()


def policy(key: str, cfg: DictConfig) -> Resume:
    """The resume policy of a dotted key, the optimizer's fields read from the method `cfg` names."""
    name = OmegaConf.select(cfg, "optimizer.name", default=None)
    return resume_policy(key, config_classes().get(name))


def honoured(key: str, cfg: DictConfig) -> bool:
    """A continued run may take another value of `key` (all but the `fixed` settings)."""
    return policy(key, cfg) is not Resume.fixed


def saved_config(run_dir: Path) -> DictConfig:
    path = Path(run_dir) / CONFIG_NAME
    if not path.exists():
        raise ResumeError(f"resume={run_dir}: no {CONFIG_NAME} there; name the directory of an earlier run")
    return OmegaConf.load(path)


def typed(plain: DictConfig) -> DictConfig:
    """A saved (plain) config checked against the schemas again, the optimizer's included."""
    schema = OmegaConf.structured(RunConfig)
    classes = config_classes()
    name = plain.get("optimizer", {}).get("name")
    if name not in classes:
        raise ResumeError(f"the saved config names optimizer '{name}', which this greater does not know")
    schema.optimizer = OmegaConf.structured(classes[name])
    return OmegaConf.merge(schema, plain)


def plain(value: Any) -> Any:
    """A setting or a group of them (a DictConfig or a config dataclass) as plain data, enums as names."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = OmegaConf.structured(value)
    if isinstance(value, DictConfig) or OmegaConf.is_list(value):
        return OmegaConf.to_container(value, resolve=True, enum_to_str=True)
    return str(value) if hasattr(value, "value") and isinstance(value, str) else value


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): node}


def changed_keys(saved: Any, current: Any, both_sides: bool = False) -> list[str]:
    """Leaf keys whose values differ (keys of one side only count too, unless `both_sides`)."""
    a, b = _flat(plain(saved)), _flat(plain(current))
    keys = a.keys() & b.keys() if both_sides else a.keys() | b.keys()
    return sorted(k for k in keys if k not in NOT_SETTINGS and a.get(k, _ABSENT) != b.get(k, _ABSENT))


def _describe(saved: DictConfig, cfg: DictConfig, keys: list[str]) -> str:
    def value(node: DictConfig, key: str) -> Any:
        return plain(OmegaConf.select(node, key, default=None))

    return ", ".join(f"{k}: {value(saved, k)} -> {value(cfg, k)}" for k in keys[:4])

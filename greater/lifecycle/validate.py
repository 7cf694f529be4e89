"""Every setting checked before anything loads, in one place.

`validate(cfg)` walks the leaf fields of `RunConfig` and of the chosen method's config dataclass and checks
the bounds each declares (`setting(..., min=..., above=...)` in greater/config.py), then applies the few rules
that tie settings together. Each failure is one line that names the key, its value and the fix. Closed sets
need no check here: the enums refuse a value outside them when Hydra composes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from greater.config import RunConfig, leaves
from greater.models.sources import check_device, check_source  # find the package, folder or device; load nothing
from greater.optimizers.registry import config_classes

START_EXAMPLE = '"Let\'s think step by step."'  # how a starting prompt is passed on the command line


class ConfigError(ValueError):
    """A setting out of its bounds, or settings that do not fit together."""


def validate(cfg: DictConfig, search: bool = False) -> None:
    """Raise ConfigError on the first setting that cannot run; `search`: a hyperparameter search (Optuna...),
    which tunes on the dev split."""
    check_bounds(cfg)
    _check_evaluation(cfg)
    _check_starting_prompt(cfg)
    if search and cfg.task.n_dev < 1:
        raise ConfigError(
            "a hyperparameter search tunes on the dev split, and task.n_dev=0 leaves none (the test split is "
            "never the objective); set task.n_dev, e.g. task.n_dev=20"
        )
    check_source(cfg.model)
    check_device(cfg.model.device)


def check_bounds(cfg: DictConfig) -> None:
    """Every leaf's declared bounds; a null value is never out of bounds (null means "unset")."""
    for leaf in leaves(RunConfig, _optimizer_schema(cfg)):
        value = OmegaConf.select(cfg, leaf.key, default=None)
        message = bound_error(leaf.key, value, leaf.declared)
        if message:
            raise ConfigError(message)


def bound_error(key: str, value: Any, declared: Mapping[str, Any]) -> str | None:
    """The error line for `key=value` against what its field declares, None when it is within bounds."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    low, above, note = declared.get("min"), declared.get("above"), declared.get("note")
    if low is not None and value < low:
        wanted = f">= {low}"
    elif above is not None and value <= above:
        wanted = f"> {above}"
    else:
        return None
    return f"{key}={value}: set it {wanted}" + (f" ({note})" if note else "")


def _optimizer_schema(cfg: DictConfig) -> type | None:
    """The chosen method's config dataclass; None for a name no method has (building the optimizer says so)."""
    return config_classes().get(OmegaConf.select(cfg, "optimizer.name", default=None))


def _check_evaluation(cfg: DictConfig) -> None:
    ev, task = cfg.evaluation, cfg.task
    if ev.n_test is not None and task.n_test > 0 and ev.n_test > task.n_test:
        raise ConfigError(
            f"evaluation.n_test={ev.n_test} must be between 1 and task.n_test={task.n_test} (the test split); "
            "set task.n_test instead, or leave evaluation.n_test unset"
        )
    if ev.mode == "loglik" and task.answer_type in ("integer", "text") and not task.options:
        raise ConfigError(
            f"evaluation.mode=loglik needs a closed answer set, and task.answer_type={task.answer_type} has none; "
            "use evaluation.mode=generate or set task.options"
        )


def _check_starting_prompt(cfg: DictConfig) -> None:
    """The starting prompt (`prompt`, else task.initial_prompt) must have a token: GReaTer edits its tokens,
    and the model reads it in every method."""
    if cfg.prompt is not None and not cfg.prompt.strip():
        raise ConfigError(
            f"prompt={cfg.prompt!r}: the starting prompt must have at least one token; pass one, e.g. "
            f"prompt={START_EXAMPLE}, or leave prompt unset to start from task.initial_prompt"
        )
    if cfg.prompt is None and not str(cfg.task.initial_prompt).strip():
        raise ConfigError(
            f"task.initial_prompt={cfg.task.initial_prompt!r}: the starting prompt must have at least one token; "
            f"set one, e.g. task.initial_prompt={START_EXAMPLE}, or pass prompt=..."
        )

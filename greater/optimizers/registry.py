"""Optimizers by name, from the `greater.optimizers` entry-point group.

Every method, built in or from another package, is one entry point: its name is the method's
(`optimizer=<name>`) and its value the method's config dataclass, in a module that imports no torch, so that
composing a config loads no model code. The dataclass names its implementation (`implementation =
"module:Class"`), imported only when a run builds the optimizer. The built-ins are declared in
pyproject.toml exactly as a third-party package declares its own (README, "Adding a method").
"""

from __future__ import annotations

import importlib
from dataclasses import is_dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from greater.optimizers.base import Optimizer, OptimizerConfig
    from greater.writers.base import Writer

GROUP = "greater.optimizers"


@cache
def config_classes() -> dict[str, type[OptimizerConfig]]:
    """Every installed method's config dataclass by name, sorted; imports no implementation."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if not found:
        raise ImportError(f"no optimizer is registered under the '{GROUP}' entry points; pip install the package")
    return {name: found[name].load() for name in sorted(found)}


def builtin_names() -> list[str]:
    """The methods this package itself declares."""
    return [name for name, cls in config_classes().items() if cls.__module__.startswith("greater.")]


def _resolve(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def optimizer_class(name: str) -> type[Optimizer]:
    """The implementation of method `name` (imported now)."""
    classes = config_classes()
    if name not in classes:
        raise ValueError(f"unknown optimizer '{name}'; use one of {', '.join(classes)}")
    implementation = getattr(classes[name], "implementation", None)
    if not implementation:
        raise TypeError(f"{classes[name].__name__} needs a class attribute `implementation = 'module:Class'`")
    return _resolve(implementation)


def optimizers() -> dict[str, type[Optimizer]]:
    """Every method's implementation by name (imports them all, torch included)."""
    return {name: optimizer_class(name) for name in config_classes()}


def optimizer_config(cfg: Any) -> OptimizerConfig:
    """A method's config as its dataclass, checked against the class that implements it; `cfg` is the
    dataclass or a DictConfig of one."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_object(cfg)
    cls = optimizer_class(getattr(cfg, "name", None))
    if not (is_dataclass(cfg) and isinstance(cfg, cls.config_class)):
        raise TypeError(f"optimizer '{cls.name}' takes a {cls.config_class.__name__}, got {type(cfg).__name__}")
    return cfg


def build_optimizer(cfg: Any, writer: Writer | None = None) -> Optimizer:
    """The optimizer a config names; `cfg` is the method's config dataclass or a DictConfig of one. `writer`:
    who writes a text method's (or GEPA's) prompts, given to the constructor of a method whose config has a
    `writer` setting (greater.writers.build.writer_for makes it); None: the task model writes."""
    cfg = optimizer_config(cfg)
    cls = optimizer_class(cfg.name)
    if writer is None:
        return cls(cfg)
    if not hasattr(cfg, "writer"):
        raise TypeError(f"optimizer '{cls.name}' has no writer setting; build it without a writer")
    return cls(cfg, writer=writer)

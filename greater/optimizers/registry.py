"""Optimizers by name. Every module in greater/optimizers/ is imported once, so a new method registers
itself with `@register_optimizer` and needs no edit here."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from greater.optimizers.base import Optimizer, OptimizerConfig

_OPTIMIZERS: dict[str, type[Optimizer]] = {}


def register_optimizer(cls: type[Optimizer]) -> type[Optimizer]:
    if not getattr(cls, "name", None) or not getattr(cls, "config_class", None):
        raise TypeError(f"{cls.__name__} needs class attributes `name` and `config_class`")
    _OPTIMIZERS[cls.name] = cls
    return cls


def optimizers() -> dict[str, type[Optimizer]]:
    import greater.optimizers as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(_OPTIMIZERS)


def build_optimizer(cfg: Any) -> Optimizer:
    """The optimizer a config names; `cfg` is the method's config dataclass or a DictConfig of one."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_object(cfg)
    known = optimizers()
    name = getattr(cfg, "name", None)
    if name not in known:
        raise ValueError(f"unknown optimizer '{name}'; use one of {', '.join(sorted(known))}")
    cls = known[name]
    if not (is_dataclass(cfg) and isinstance(cfg, cls.config_class)):
        raise TypeError(f"optimizer '{name}' takes a {cls.config_class.__name__}, got {type(cfg).__name__}")
    return cls(cfg)


def config_classes() -> dict[str, type[OptimizerConfig]]:
    return {name: cls.config_class for name, cls in optimizers().items()}

"""Optimizers by name.

Built-in methods are listed here as (config class, implementation), each a "module:Name" path: composing a
config imports only the torch-free config modules, and an implementation is imported when a run builds it.
A new method can instead be one flat module in greater/optimizers/ that registers itself with
`@register_optimizer` (the README's "Adding a method"); those modules are imported to learn their schemas.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from greater.optimizers.base import Optimizer, OptimizerConfig

_TEXT = "greater.optimizers.text"
BUILTIN: dict[str, tuple[str, str]] = {
    "greater": (
        "greater.optimizers.greater.config:GreaterConfig",
        "greater.optimizers.greater.optimizer:GreaterOptimizer",
    ),
    "zs_cot": ("greater.optimizers.zero_shot:ZeroShotConfig", "greater.optimizers.zero_shot:ZeroShotOptimizer"),
    "ape": (f"{_TEXT}.ape:APEConfig", f"{_TEXT}.ape:APEOptimizer"),
    "apo": (f"{_TEXT}.apo:APOConfig", f"{_TEXT}.apo:APOOptimizer"),
    "pe2": (f"{_TEXT}.pe2:PE2Config", f"{_TEXT}.pe2:PE2Optimizer"),
    "opro": (f"{_TEXT}.opro:OPROConfig", f"{_TEXT}.opro:OPROOptimizer"),
    "textgrad": (f"{_TEXT}.textgrad:TextGradConfig", f"{_TEXT}.textgrad:TextGradOptimizer"),
    "gepa": ("greater.optimizers.gepa.config:GEPAConfig", "greater.optimizers.gepa.optimizer:GEPAOptimizer"),
}
_FRAMEWORK_MODULES = {"base", "registry", "loop"}  # flat modules of the package that are not methods
_OPTIMIZERS: dict[str, type[Optimizer]] = {}


def register_optimizer(cls: type[Optimizer]) -> type[Optimizer]:
    if not getattr(cls, "name", None) or not getattr(cls, "config_class", None):
        raise TypeError(f"{cls.__name__} needs class attributes `name` and `config_class`")
    _OPTIMIZERS[cls.name] = cls
    return cls


def _resolve(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _import_plugins() -> None:
    """Import the flat method modules of greater/optimizers/ so that their decorators register them."""
    import greater.optimizers as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg and module.name not in _FRAMEWORK_MODULES:
            importlib.import_module(f"{package.__name__}.{module.name}")


def config_classes() -> dict[str, type[OptimizerConfig]]:
    """Every method's config dataclass by name; imports no implementation of a built-in method."""
    _import_plugins()
    classes = {name: _resolve(config) for name, (config, _) in BUILTIN.items()}
    classes.update({name: cls.config_class for name, cls in _OPTIMIZERS.items()})
    return classes


def optimizers() -> dict[str, type[Optimizer]]:
    """Every method's implementation by name (imports them all, torch included)."""
    _import_plugins()
    for _, implementation in BUILTIN.values():
        _resolve(implementation)  # registers itself
    return dict(_OPTIMIZERS)


def optimizer_class(name: str) -> type[Optimizer]:
    if name in _OPTIMIZERS:
        return _OPTIMIZERS[name]
    if name in BUILTIN:
        return _resolve(BUILTIN[name][1])
    known = optimizers()
    if name not in known:
        raise ValueError(f"unknown optimizer '{name}'; use one of {', '.join(sorted(known))}")
    return known[name]


def build_optimizer(cfg: Any) -> Optimizer:
    """The optimizer a config names; `cfg` is the method's config dataclass or a DictConfig of one."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_object(cfg)
    cls = optimizer_class(getattr(cfg, "name", None))
    if not (is_dataclass(cfg) and isinstance(cfg, cls.config_class)):
        raise TypeError(f"optimizer '{cls.name}' takes a {cls.config_class.__name__}, got {type(cfg).__name__}")
    return cls(cfg)

"""The writer a run's config names, built once the task model is loaded and before the optimizer, which is
given it at construction (`build_optimizer(cfg.optimizer, writer=...)`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from greater.config import DEFAULT_CACHE_DIR
from greater.models.language_model import LanguageModel
from greater.models.registry import load_model_config
from greater.writers.base import Writer
from greater.writers.endpoint import EndpointWriter
from greater.writers.local import ModelWriter, TaskModelWriter
from greater.writers.spec import EndpointSpec, ModelSpec, parse_writer


def build_writer(value: Any, lm: LanguageModel, cache_dir: str = DEFAULT_CACHE_DIR) -> Writer:
    """`value`: optimizer.writer as configured. Another model loads on the task model's device and counts its
    work into the task model's ledger (the run's), so the budget and result.json see it."""
    spec = parse_writer(value)
    if spec is None:
        return TaskModelWriter(lm)
    if isinstance(spec, ModelSpec):
        cfg = load_model_config(spec.name)
        device = str(lm.device) if lm.device.type != "cpu" else cfg.device
        return ModelWriter(LanguageModel.from_config(replace(cfg, device=device), cache_dir, usage=lm.usage))
    assert isinstance(spec, EndpointSpec)
    return EndpointWriter(spec, lm.usage)


def writer_for(config: Any, lm: LanguageModel, cache_dir: str = DEFAULT_CACHE_DIR) -> Writer | None:
    """The writer of a method whose config has a `writer` setting; None for a method without one (GReaTer)."""
    if not hasattr(config, "writer"):
        return None
    return build_writer(config.writer, lm, cache_dir)

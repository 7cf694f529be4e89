"""Which model computed a generation: its weights and what computes with them, as one hash (the generation
cache's key, greater/engine/generation_cache.py)."""

from __future__ import annotations

import hashlib
import json

import torch
import transformers


def weights_fingerprint(model) -> str:
    """sha256 of a model's state dict (every tensor's name, dtype, shape and bytes) and its config: the same
    for the same weights however they were loaded, different for other weights, dtypes or shapes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().data)
    config = getattr(model, "config", None)
    if config is not None:  # e.g. rope or norm settings that are not weights; "_" keys are loading details
        settings = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def model_identity(model, packed_kernels: bool) -> str:
    """What decides a greedy row's tokens besides its input and decoding settings: the weights, and what
    computes with them (a kernel or version change is float rounding, which can flip a near-tie)."""
    first = next(model.parameters())
    parts = {
        "weights": weights_fingerprint(model),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": first.device.type,
        "attention": getattr(model.config, "_attn_implementation", None),
        "packed_kernels": packed_kernels,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

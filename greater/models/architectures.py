"""The paper architectures shipped as configs in greater/models/configs/ (the published dimensions of
gemma-2-9b-it, gemma-2-2b-it, Meta-Llama-3-8B-Instruct, Llama-3.2-1B-Instruct, Qwen2.5-7B-Instruct and
gemma-3-1b-it), each family's special tokens and chat template, and `model.shrink`, which replaces
architecture keys (fewer layers, a narrower model) for CPU tests. Torch-free: validating a config reads it;
greater/models/random_weights.py builds the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

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

"""Attention for one new token as two small products, for models that run transformers' sdpa on a CPU.

A decoding step has one query per row. torch's CPU flash kernel, which sdpa picks there, sets up blocks
meant for long queries on every call: on the embedded model it took 15-25 ms of a 24-row decoding step.
For one query the scores are a product with the cached keys, a masked softmax, and a product with the cached
values: grouped-query heads share their key-value head without copying it. Every other call (a prefill,
scoring, the gradient's pass) goes to transformers' sdpa unchanged, with the same masks.

Registered with transformers' attention interface as `sdpa_decode` (its masks are sdpa's). Same numbers up to
float rounding, like any change of attention kernel.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_decode"
_SDPA_ONLY = ("softcap", "s_aux", "position_bias")  # features this path does not implement: sdpa handles them


def decode_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers' attention signature: query [B, H, Q, d], key and value [B, Hkv, L, d]; returns
    ([B, Q, H, d], None)."""
    if query.shape[2] != 1 or dropout or any(kwargs.get(k) is not None for k in _SDPA_ONLY):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim)  # the query heads of each key-value head
    scale = scaling if scaling is not None else dim**-0.5
    scores = torch.matmul(grouped, key.transpose(-1, -2)) * scale  # [B, Hkv, G, L]
    if attention_mask is not None:
        mask = attention_mask[..., -1:, :]  # [B or 1, 1, 1, L]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    out = torch.matmul(torch.softmax(scores, dim=-1), value)  # [B, Hkv, G, d]
    return out.reshape(rows, heads, 1, dim).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, decode_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use_decode_attention(model) -> bool:
    """Switch a CPU model that runs sdpa to `sdpa_decode`; whether it was switched."""
    first = next(model.parameters(), None)
    if first is None or first.device.type != "cpu" or getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    if not getattr(model, "_can_set_attn_implementation", lambda: False)():
        return False
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME

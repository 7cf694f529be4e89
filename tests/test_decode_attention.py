"""One-token attention (greater.engine.decode_attention) against torch's sdpa computed independently:
grouped-query heads, padding masks (bool and additive), a custom scale; longer queries go to sdpa."""

import pytest
import torch
import torch.nn.functional as F

from greater.engine.decode_attention import NAME, decode_attention, use_decode_attention
from greater.engine.kernels import transformers_kernels
from tests.tiny import tiny_language_model


class _Module:
    num_key_value_groups = 3
    is_causal = True


def _inputs(rows=4, heads=6, kv_heads=2, length=9, dim=8, q=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(rows, heads, q, dim, generator=g)
    key = torch.randn(rows, kv_heads, length, dim, generator=g)
    value = torch.randn(rows, kv_heads, length, dim, generator=g)
    keep = torch.ones(rows, 1, q, length, dtype=torch.bool)
    keep[1, ..., :3] = False  # left padding on one row
    keep[2, ..., 4] = False  # a masked slot inside a row (a rejected draft)
    return query, key, value, keep


def _sdpa(query, key, value, keep, scale=None):
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=keep, scale=scale).transpose(1, 2)


@pytest.mark.parametrize("scale", [None, 0.3])
def test_one_query_matches_sdpa_with_a_bool_mask(scale):
    query, key, value, keep = _inputs()
    out, _ = decode_attention(_Module(), query, key, value, keep, scaling=scale)
    assert out.shape == (4, 1, 6, 8)
    assert torch.allclose(out, _sdpa(query, key, value, keep, scale), atol=1e-5)


def test_one_query_matches_sdpa_with_an_additive_mask_and_none():
    query, key, value, keep = _inputs()
    additive = torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    out, _ = decode_attention(_Module(), query, key, value, additive)
    assert torch.allclose(out, _sdpa(query, key, value, keep), atol=1e-5)
    out, _ = decode_attention(_Module(), query, key, value, None)
    assert torch.allclose(out, _sdpa(query, key, value, torch.ones_like(keep)), atol=1e-5)


def test_longer_queries_go_to_sdpa():
    query, key, value, keep = _inputs(q=3, length=5)
    keep = torch.ones_like(keep).tril(diagonal=2)  # causal, the queries being the last three positions
    out, _ = decode_attention(_Module(), query, key, value, keep)
    assert torch.allclose(out, _sdpa(query, key, value, keep), atol=1e-5)


def test_a_cpu_sdpa_model_is_switched_and_decodes_the_same_tokens():
    on, off = tiny_language_model(seed=0), tiny_language_model(seed=0, cpu_kernels=False)
    assert on.kernels.decode_attention and on.model.config._attn_implementation == NAME
    assert off.model.config._attn_implementation == "sdpa" and not use_decode_attention(off.model.to("meta"))
    prompts = [on.encode("2 + 2 ="), on.encode("a longer question, padded against the first one")]
    assert on.generate(prompts, 12) == tiny_language_model(seed=0, cpu_kernels=False).generate(prompts, 12)


def test_transformers_kernels_runs_sdpa_for_the_block_then_switches_back():
    lm = tiny_language_model(seed=0)
    with transformers_kernels(lm.model):
        assert lm.model.config._attn_implementation == "sdpa"
    assert lm.model.config._attn_implementation == NAME

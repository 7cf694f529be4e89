"""An independent reference for tests that check the engine against plain computations.

A LanguageModel runs its float32 CPU model on the engine's own kernels (greater.engine.kernels): every
nn.Linear becomes a PackedLinear (oneDNN, with its own backward) and one-token attention runs as
`sdpa_decode`. A reference computed through `lm.model` would share those kernels, so a bug in them would
pass the comparison. `plain_model(lm)` is a separate transformers model of the same config and weights
(copied, not shared) with torch's nn.Linear and transformers' eager attention: nothing of the engine in it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from greater.engine.decode_attention import NAME as DECODE_ATTENTION
from greater.engine.packed import PackedLinear

ATTENTION = "eager"  # transformers' plain attention: no sdpa kernel choice, nothing the engine registers


def plain_model(lm) -> PreTrainedModel:
    """A plain transformers copy of `lm.model`: the same config and weights, none of the engine's kernels."""
    config = copy.deepcopy(lm.model.config)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=ATTENTION, dtype=torch.float32)
    model.load_state_dict(lm.model.state_dict())
    model = model.eval().requires_grad_(False)
    assert_plain(model)
    assert_same_weights(model, lm)
    return model


def assert_plain(model: PreTrainedModel) -> None:
    """No engine kernel anywhere in `model`: only torch's own nn.Linear, and transformers' eager attention."""
    assert not any(isinstance(m, PackedLinear) for m in model.modules())
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears and all(type(m) is nn.Linear for m in linears)
    assert model.config._attn_implementation == ATTENTION != DECODE_ATTENTION


def assert_same_weights(model: PreTrainedModel, lm) -> None:
    """`model` holds the same weights as `lm.model`, equal value for value, in tensors of its own."""
    mine, theirs = model.state_dict(), lm.model.state_dict()
    assert mine.keys() == theirs.keys()
    for name, tensor in mine.items():
        assert tensor.dtype == theirs[name].dtype and torch.equal(tensor, theirs[name]), name
    shared = {p.data_ptr() for p in lm.model.parameters()} & {p.data_ptr() for p in model.parameters()}
    assert not shared


def full_logits(model: PreTrainedModel, ids: list[int]) -> torch.Tensor:
    """[L, V] float32 logits of one unpadded sequence, one forward without a cache."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()

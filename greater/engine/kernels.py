"""The CPU kernels a LanguageModel runs its model with, and a way back to transformers' own for a block.

On a CPU, a float32 model's linear layers run through oneDNN on weights packed once (greater.engine.packed)
and one-token attention runs as two small products (greater.engine.decode_attention). Both are the same
float32 numbers up to rounding. `model.cpu_kernels=false` keeps transformers' and torch's own kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from greater.engine.decode_attention import NAME as DECODE_ATTENTION
from greater.engine.decode_attention import use_decode_attention
from greater.engine.packed import PackedLinear, pack_linears


@dataclass(frozen=True)
class CpuKernels:
    """What `use_cpu_kernels` switched on: the linear layers packed, and whether decoding attention is ours."""

    packed_layers: int = 0
    decode_attention: bool = False


def use_cpu_kernels(model) -> CpuKernels:
    """Switch a CPU float32 model to the faster kernels, in place; what was switched (nothing elsewhere)."""
    return CpuKernels(pack_linears(model), use_decode_attention(model))


@contextmanager
def transformers_kernels(model) -> Iterator[None]:
    """Run the block with torch's product in every linear layer and transformers' sdpa for attention (then as
    before): what plain transformers calls cost, for the benchmark's reference and floor patterns."""
    layers = [m for m in model.modules() if isinstance(m, PackedLinear)]
    before = [m.enabled for m in layers]
    attention = getattr(getattr(model, "config", None), "_attn_implementation", None)
    for m in layers:
        m.enabled = False
    if attention == DECODE_ATTENTION:
        model.set_attn_implementation("sdpa")
    try:
        yield
    finally:
        for m, state in zip(layers, before):
            m.enabled = state
        if attention == DECODE_ATTENTION:
            model.set_attn_implementation(DECODE_ATTENTION)

"""Linear layers through oneDNN with their weights packed once: float32 on a CPU.

Decoding multiplies a few rows (the batch) by every weight matrix at each token. torch's default CPU product
(MKL's sgemm) re-lays the weight out on every call, and on some processors (the project's AMD machines) it
runs a generic path: a decode step on the embedded model spends most of its time there at a quarter of the
memory bandwidth. oneDNN's product over a weight laid out once for it reads each weight once per call, at
every batch size, forward and backward (about 2x on the embedded model's products on 2 cores; the whole
step is measured by scripts/benchmark.py with and without `--no-cpu-kernels`).

The numbers are float32 all the way, equal to torch's own product up to float rounding (like a change of
batch size or attention kernel), and a row's result does not depend on the other rows of its batch.

`pack_linears(model)` swaps every `nn.Linear` of a CPU float32 model for a `PackedLinear` sharing its weight
(tied embeddings stay tied, the state dict is unchanged); a layer's `enabled` switched off runs torch's own
product (greater.engine.kernels.transformers_kernels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _onednn_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class _PackedProduct(torch.autograd.Function):
    """x @ W.T (+ b) by oneDNN; the backward gives the input's gradient only (the model's weights are frozen)."""

    @staticmethod
    def forward(ctx, x, packed, weight, bias):
        ctx.save_for_backward(weight)
        return _onednn_linear(x, packed, bias)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        return grad @ weight, None, None, None


class PackedLinear(nn.Linear):
    """An `nn.Linear` whose forward runs on a copy of its weight packed for oneDNN, made when the layer is
    wrapped and again whenever the weight changes (an in-place edit, a new tensor, another device or dtype)."""

    enabled = True  # False: torch's own product (set per layer by greater.engine.kernels.transformers_kernels)

    @classmethod
    def wrap(cls, linear: nn.Linear) -> PackedLinear:
        layer = cls.__new__(cls)
        layer.__dict__.update(linear.__dict__)  # the same parameters, hooks and flags: nothing is copied
        layer._packed, layer._packed_for = None, None
        layer._weight_packed()  # now, with the model's loading, not in its first pass
        return layer

    def _key(self) -> tuple:
        w = self.weight
        return (w.data_ptr(), w._version, w.dtype, w.device, tuple(w.shape))

    def _weight_packed(self) -> torch.Tensor:
        key = self._key()
        if self._packed_for != key:
            self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach())
            self._packed_for = key
        return self._packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if not (self.enabled and w.device.type == "cpu" and w.dtype == torch.float32 and x.dtype == torch.float32):
            return F.linear(x, w, self.bias)
        bias = None if self.bias is None else self.bias.detach()
        if torch.is_grad_enabled() and x.requires_grad:
            return _PackedProduct.apply(x.contiguous(), self._weight_packed(), w.detach(), bias)
        return _onednn_linear(x.contiguous(), self._weight_packed(), bias)


def onednn_works() -> bool:
    """Whether this torch has oneDNN's packed product and it agrees with torch's own on a small case."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        generator = torch.Generator().manual_seed(0)
        w = torch.randn(24, 16, generator=generator)
        x = torch.randn(3, 16, generator=generator)
        got = _onednn_linear(x, torch.ops.mkldnn._reorder_linear_weight(w), None)
    except (RuntimeError, AttributeError, NotImplementedError):
        return False
    return torch.allclose(got, F.linear(x, w), atol=1e-5)


def pack_linears(model: nn.Module) -> int:
    """Swap every `nn.Linear` of a float32 CPU model for a `PackedLinear`; the number swapped (0 where the
    model is elsewhere, in another dtype, or torch has no working oneDNN)."""
    first = next(model.parameters(), None)
    if first is None or first.device.type != "cpu" or first.dtype != torch.float32 or not onednn_works():
        return 0
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, PackedLinear.wrap(child))
                swapped += 1
    return swapped

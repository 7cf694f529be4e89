"""Key-value caches of token prefixes that recur across a run's forward passes, each computed once.

An optimizer goes over the same training questions at every step, and within a step several times (the
current prompt's rollouts, the gradient pass, the candidates' rollouts, the fluency term). Each pass starts
with the question's chat before the prompt, the same tokens every time. The store keeps that chat's
key-value cache (one entry per question, pinned when the scorer first meets the question) and every pass
starting with it reads it instead of running it again. Entries are plain per-layer (keys, values) tensors
of one unpadded sequence, positions 0..L-1 already applied, so they join any batch with left padding.

The total size is capped (least recently used entries go first): a GPU needs its memory for batches.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from greater.engine.kv import padding_mask

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [heads, L, head_dim]


@dataclass(frozen=True)
class Match:
    """The first `length` tokens of a row come from the store entry `key` (length 0: nothing stored)."""

    key: tuple[int, ...] | None
    length: int


class PrefixStore:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], Layers] = OrderedDict()
        self.bytes = 0
        self.hits = 0  # tokens read from the store instead of computed

    def __contains__(self, tokens: tuple[int, ...]) -> bool:
        return tokens in self.entries

    def add(self, tokens: tuple[int, ...], layers: Layers) -> None:
        size = _nbytes(layers)
        if size > self.max_bytes or tokens in self.entries:
            return
        self.entries[tokens] = layers
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= _nbytes(dropped)

    def match(self, row: list[int], limit: int) -> Match:
        """The longest stored entry that starts `row`, used for at most `limit` tokens (a caller that needs the
        logits of a row's last tokens keeps them out of the stored part)."""
        best = Match(None, 0)
        for key in self.entries:
            n = min(len(key), limit)
            if n > best.length and tuple(row[:n]) == key[:n]:
                best = Match(key, n)
        if best.key is not None:
            self.entries.move_to_end(best.key)
            self.hits += best.length
        return best

    def gather(self, matches: list[Match], device) -> tuple[Layers, torch.Tensor] | None:
        """The matched parts as one left-padded batch: per layer (keys, values) [B, heads, W, head_dim] and the
        attention mask [B, W]; None when no row matched."""
        width = max(m.length for m in matches)
        if width == 0:
            return None
        template = next(iter(self.entries.values()))
        layers: Layers = []
        for layer, (k0, v0) in enumerate(template):
            keys = k0.new_zeros(len(matches), k0.shape[0], width, k0.shape[2])
            values = v0.new_zeros(len(matches), v0.shape[0], width, v0.shape[2])
            for b, m in enumerate(matches):
                if m.length:
                    k, v = self.entries[m.key][layer]
                    keys[b, :, width - m.length :] = k[:, : m.length]
                    values[b, :, width - m.length :] = v[:, : m.length]
            layers.append((keys, values))
        mask = padding_mask([m.length for m in matches], device, "left", width)
        return layers, mask


def _nbytes(layers: Layers) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)

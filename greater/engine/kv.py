"""Key-value cache passes: the only module that builds or reads transformers' `DynamicCache`.

A `Prefix` is a batch's cache with its attention mask; every pass over it appends to both, so the mask always
says which cached positions a row may attend to (padding, rejected drafts and tokens fed after a stop are
zeros there). Rows may be padded in several places ([pad | cached | pad | new]); the mask and explicit
positions make the padding invisible, so each row computes what it would alone.

`Engine` binds a model to its pad id and prefix store, so callers pass rows of token ids, never tensors of
padding. The one padding helper, `pad`, is used for every batch (left for fresh rows, right for rows that
follow a cache).

Two rules make this exact on every model and device:
- Sliding-window layers (Gemma-2, Gemma-3) count their window in cache slots, not positions, so a masked slot
  inside a row (middle padding, a rejected draft, a token fed after a stop) takes a real token's place in the
  window. Left padding is harmless (it sits before every real token). `Engine.gaps_change_window(span)` says
  when a row spanning `span` slots could see a different window; the passes then take a path without gaps.
  A copied cache keeps each layer's position counter (`cumulative_length`), which the window's mask reads.
- Index tensors go to the device of the tensor they index (a model spread over GPUs keeps each layer's cache
  on its own card), and `logits_to_keep` goes as a CPU tensor, which indexes a tensor on any device.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from transformers import DynamicCache

if TYPE_CHECKING:
    from greater.engine.prefix_store import Layers, PrefixStore

Side = Literal["left", "right"]


def cache_keyword(model) -> str:
    # transformers renamed `past_key_values` to `cache` during 5.x; use whichever this version takes.
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def padding_mask(lengths: list[int], device, side: Side = "left", width: int | None = None) -> torch.Tensor:
    """[B, width] attention mask of rows with these lengths: ones on the real tokens, padding on `side`."""
    if side not in ("left", "right"):
        raise ValueError(f"padding side '{side}': use 'left' or 'right'")
    width = max(lengths) if width is None else width
    if side == "left":
        rows = [[0] * (width - n) + [1] * n for n in lengths]
    else:
        rows = [[1] * n + [0] * (width - n) for n in lengths]
    return torch.tensor(rows, device=device)


def pad(rows: list[list[int]], pad_id: int, device, side: Side = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [B, W] (padded with `pad_id` to the longest row on `side`) and their attention mask [B, W]."""
    width = max(len(r) for r in rows)
    mask = padding_mask([len(r) for r in rows], device, side, width)
    fill = [[pad_id] * (width - len(r)) for r in rows]
    ids = [f + r if side == "left" else r + f for f, r in zip(fill, rows)]
    return torch.tensor(ids, device=device), mask


@dataclass
class Prefix:
    """A batch's key-value cache and the attention mask over its positions [B, W]."""

    cache: DynamicCache
    mask: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """[B] the positions each row has attended so far: where its next token sits."""
        return self.mask.sum(-1)


def sliding_window(model) -> int | None:
    """The window of the model's sliding-window attention layers; None when it has none."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)  # Qwen2 declares a window but may use it on no layer
    if not window or (types is not None and "sliding_attention" not in types):
        return None
    return int(window)


def on_device_of(index: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """`index` where it may index `tensor`: a CPU index indexes any device; else it moves to tensor's device."""
    return index if index.device.type == "cpu" else index.to(tensor.device)


def _rows_of(layer, index: torch.Tensor):
    """A copy of a cache layer holding the rows `index`: every other attribute (a sliding layer's
    `cumulative_length`, its window) is kept, since the attention mask of the next pass reads them."""
    out = copy.copy(layer)
    at = on_device_of(index, layer.keys)
    out.keys, out.values = layer.keys[at], layer.values[at]
    return out


def select(prefix: Prefix, index: torch.Tensor, config=None) -> Prefix:
    """A new prefix holding copies of the rows `index` (repeats allowed); the original is left as it is.
    (`config` is not needed: the copy keeps the layers' own kinds.)"""
    cache = copy.copy(prefix.cache)
    cache.layers = [_rows_of(layer, index) for layer in prefix.cache.layers]
    return Prefix(cache, prefix.mask[on_device_of(index, prefix.mask)])


def keep_rows(prefix: Prefix, index: torch.Tensor) -> None:
    """Drop every row but `index` from the prefix, in place (rows that finished decoding leave the batch)."""
    for layer in prefix.cache.layers:
        layer.batch_select_indices(on_device_of(index, layer.keys))
    prefix.mask = prefix.mask[on_device_of(index, prefix.mask)]


def snapshot(prefix: Prefix, row: int, length: int) -> Layers:
    """The last `length` cached positions of one left-padded row, per layer (keys, values) [heads, L, d]: an
    entry for the prefix store, which must own its tensors (hence the copies)."""
    own = slice(-length, None)
    return [(layer.keys[row, :, own].clone(), layer.values[row, :, own].clone()) for layer in prefix.cache.layers]


@dataclass(frozen=True)
class Engine:
    """A causal LM with the pad id and prefix store its cached passes use."""

    model: object
    pad_id: int
    store: PrefixStore | None = None

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def gaps_change_window(self, span: int) -> bool:
        """Whether masked slots inside a row spanning up to `span` cache slots could change what a sliding
        layer's window holds: only when the row can outgrow the window (within it every slot is seen)."""
        window = sliding_window(self.model)
        return window is not None and span >= window

    def _forward(self, prefix: Prefix, new_mask: torch.Tensor, positions: torch.Tensor, keep, **inputs):
        prefix.mask = torch.cat([prefix.mask, new_mask], 1)
        if isinstance(keep, torch.Tensor):
            keep = keep.cpu()  # sliced from the last hidden states, on whichever device holds the last layer
        out = self.model(
            attention_mask=prefix.mask,
            position_ids=positions,
            logits_to_keep=keep,
            use_cache=True,
            **{cache_keyword(self.model): prefix.cache},
            **inputs,
        )
        return out.logits

    def empty(self, rows: int) -> Prefix:
        mask = torch.zeros(rows, 0, dtype=torch.long, device=self.device)
        return Prefix(DynamicCache(config=self.model.config), mask)

    def prefill(self, rows: list[list[int]], keep, from_store: bool = True) -> tuple[Prefix, torch.Tensor]:
        """One pass over `rows` into a new prefix: (prefix, the last `keep` logits of each row [B, keep, V]).
        Rows that start with a prefix held in the store read its cache instead of running it (the last `keep`
        tokens are always run, since their logits are wanted)."""
        store = self.store if from_store else None
        matches = [store.match(r, len(r) - keep) for r in rows] if store is not None and store.entries else None
        gathered = store.gather(matches, self.device) if matches else None
        if gathered is None:
            return self.extend(self.empty(len(rows)), rows, keep)
        layers, mask = gathered
        prefix = Prefix(DynamicCache(ddp_cache_data=layers, config=self.model.config), mask)
        return self.extend(prefix, [r[m.length :] for r, m in zip(rows, matches)], keep)

    def extend(self, prefix: Prefix, rows: list[list[int]], keep) -> tuple[Prefix, torch.Tensor]:
        """Run left-padded `rows` after the prefix: (the prefix, now holding them, their last `keep` logits)."""
        ids, rows_mask = pad(rows, self.pad_id, self.device, "left")
        mask = torch.cat([prefix.mask, rows_mask], 1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, mask.shape[1] - ids.shape[1] :]
        return prefix, self._forward(prefix, rows_mask, positions, keep, input_ids=ids)

    def append(
        self, prefix: Prefix, rows: list[list[int]], keep, shift_first: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Run right-padded `rows` after the prefix, each from the position its row has reached; the logits at
        the padded columns `keep` (int: the last ones; tensor: those columns) [B, K, V]. `shift_first` [B, d],
        when given, is added to the embedding of each row's first token (the GReaTer gradient is taken with
        respect to it)."""
        ids, rows_mask = pad(rows, self.pad_id, self.device, "right")
        positions = prefix.lengths[:, None] + torch.arange(ids.shape[1], device=self.device)
        if shift_first is None:
            return self._forward(prefix, rows_mask, positions, keep, input_ids=ids)
        base = self.model.get_input_embeddings()(ids).detach()  # [B, W, d]
        batch = torch.arange(len(rows), device=self.device)
        embeds = base.index_put((batch, torch.zeros_like(batch)), shift_first, accumulate=True)
        return self._forward(prefix, rows_mask, positions, keep, inputs_embeds=embeds)

    def step(self, prefix: Prefix, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed one token per row [B] at `positions` [B]; the logits of the next token [B, V]."""
        ones = prefix.mask.new_ones(len(tokens), 1)
        return self._forward(prefix, ones, positions[:, None], 1, input_ids=tokens[:, None])[:, -1]

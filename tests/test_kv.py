"""greater.engine.kv: the one padding helper and cached passes against plain full forwards."""

import pytest
import torch

from greater.engine import kv
from tests.reference import full_logits, plain_model
from tests.tiny import tiny_language_model


def test_pad_fills_with_the_pad_id_on_either_side():
    ids, mask = kv.pad([[5, 6, 7], [8]], pad_id=3, device="cpu", side="left")
    assert ids.tolist() == [[5, 6, 7], [3, 3, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = kv.pad([[5, 6, 7], [8]], pad_id=3, device="cpu", side="right")
    assert ids.tolist() == [[5, 6, 7], [8, 3, 3]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="padding side 'up': use 'left' or 'right'"):
        kv.pad([[1]], pad_id=0, device="cpu", side="up")


def test_prefill_then_append_equals_full_forwards_and_select_copies():
    """Rows of different lengths, left-padded into a cache, then right-padded continuations of different
    lengths: every row's logits equal one unpadded forward over its whole sequence."""
    lm = tiny_language_model(seed=0)
    reference = plain_model(lm)  # the full forwards: none of the engine's kernels
    engine = lm.engine
    heads = [lm.encode("a much longer head"), lm.encode("ab"), lm.encode("mid head")]
    tails = [lm.encode(" x"), lm.encode(" yes or no"), lm.encode(" 42!")]
    with torch.no_grad():
        prefix, first = engine.prefill(heads, 1)
        copy = kv.select(prefix, torch.tensor([2, 0]), lm.model.config)
        mask_before = prefix.mask.clone()
        logits = engine.append(prefix, tails, 0)
        for b, (h, t) in enumerate(zip(heads, tails)):
            full = full_logits(reference, h + t)
            assert torch.allclose(first[b, -1], full[len(h) - 1], atol=1e-5)
            assert torch.allclose(logits[b, : len(t)], full[len(h) :], atol=1e-5)
        # The copy was taken before the append: its rows still end where their heads end.
        assert torch.equal(copy.mask, mask_before[[2, 0]])
        assert copy.lengths.tolist() == [len(heads[2]), len(heads[0])]
        step = engine.step(copy, torch.tensor([tails[2][0], tails[0][0]]), copy.lengths)
        for b, row in enumerate([2, 0]):
            full = full_logits(reference, heads[row] + tails[row][:1])[-1]
            assert torch.allclose(step[b], full, atol=1e-5)

"""The prefix store: passes that start with a stored prefix read its cache and compute what they would have
computed without it (checked against the same passes with the store off and against unpadded forwards)."""

import pytest
import torch
import torch.nn.functional as F

from greater.engine.decode import Tail, greedy_decode
from greater.engine.gradient import position_gradient
from greater.engine.prefix_store import PrefixStore
from tests.reference import full_logits, plain_model
from tests.test_engine import one_hot_gradient, scorer_for
from tests.tiny import tiny_language_model

QUESTIONS = ["Is 4 even?", "a much longer question about the number 7", "why"]


def with_and_without_store(**kwargs):
    stored, plain = tiny_language_model(seed=3, **kwargs), tiny_language_model(seed=3, prefix_cache_mb=0, **kwargs)
    assert plain.prefixes is None and stored.prefixes is not None
    return stored, plain


def layers(length: int, fill: float, heads: int = 2, dim: int = 4):
    return [(torch.full((heads, length, dim), fill), torch.full((heads, length, dim), -fill)) for _ in range(2)]


def test_match_takes_the_longest_stored_start_within_the_limit():
    store = PrefixStore(max_bytes=10**6)
    store.add((1, 2, 3), layers(3, 1.0))
    store.add((1, 2, 3, 4, 5), layers(5, 2.0))
    assert store.match([1, 2, 3, 4, 5, 6], limit=6).key == (1, 2, 3, 4, 5)
    assert store.match([1, 2, 3, 4, 5, 6], limit=4).length == 4  # a stored prefix is used in part
    assert store.match([1, 2, 3, 9], limit=4) == store.match([1, 2, 3], limit=4)  # (1, 2, 3) only
    assert store.match([1, 2, 3, 9], limit=4).length == 3
    assert store.match([7, 2, 3], limit=3).length == 0


def test_the_store_keeps_its_size_by_dropping_the_least_recently_used():
    one = sum(k.numel() * 4 + v.numel() * 4 for k, v in layers(4, 0.0))
    store = PrefixStore(max_bytes=2 * one)
    store.add((1, 1, 1, 1), layers(4, 1.0))
    store.add((2, 2, 2, 2), layers(4, 2.0))
    store.match([1, 1, 1, 1, 0], limit=4)  # (1, ...) used last
    store.add((3, 3, 3, 3), layers(4, 3.0))
    assert (2, 2, 2, 2) not in store and (1, 1, 1, 1) in store and (3, 3, 3, 3) in store
    assert store.bytes == 2 * one


def test_gather_left_pads_each_rows_part():
    store = PrefixStore(max_bytes=10**6)
    store.add((1, 2, 3), layers(3, 1.0))
    matches = [store.match([1, 2, 3, 4], 4), store.match([5], 1), store.match([1, 2, 9], 2)]  # 3 rows, 2 left
    layers_, mask = store.gather(matches, "cpu")
    keys, values = layers_[0]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 0], [0, 1, 1]]
    assert keys[0, :, :].eq(1).all() and keys[2, :, 1:].eq(1).all() and keys[2, :, 0].eq(0).all()
    assert values[0].eq(-1).all()


def test_decoding_and_tail_losses_are_the_same_with_the_store():
    stored, plain = with_and_without_store()
    prefixes = [stored.encode(q) for q in QUESTIONS]
    stored.pin_prefixes(prefixes)
    inputs = [p + stored.encode(" think step by step") for p in prefixes]
    extractor = stored.encode("\nso")
    tails = [Tail(extractor + stored.encode(a), len(extractor)) for a in ("yes", "no", "7")]
    results = []
    for lm in (stored, plain):
        results.append(
            greedy_decode(lm.model, inputs, 12, lm.stop_ids, lm.tokenizer.pad_token_id, tails=tails, store=lm.prefixes)
        )
    assert stored.prefixes.hits == sum(len(p) for p in prefixes)  # every row read its question from the store
    assert results[0].tokens == results[1].tokens
    assert results[0].tail_losses == pytest.approx(results[1].tail_losses, abs=1e-5)
    # and against one unpadded forward pass per row, on a plain transformers model (none of the engine's kernels)
    reference = plain_model(plain)
    for x, reasoning, tail, loss in zip(inputs, results[0].tokens, tails, results[0].tail_losses):
        sequence = x + reasoning + tail.tokens
        logits = full_logits(reference, sequence)
        start = len(x) + len(reasoning) + tail.score_from
        assert loss == pytest.approx(
            float(F.cross_entropy(logits[start - 1 : -1], torch.tensor(sequence[start:]))), abs=1e-4
        )


def test_shared_prefixes_on_top_of_the_store_and_continuation_losses_agree():
    stored, plain = with_and_without_store()
    questions = [stored.encode(q) for q in QUESTIONS]
    stored.pin_prefixes(questions)
    prompts = [stored.encode(p) for p in ("think step by step", "think hard", "think")]
    inputs = [q + p for p in prompts for q in questions]
    shared = [len(q) + 1 for p in prompts for q in questions]  # the question and the prompts' common first token
    out = [
        greedy_decode(
            lm.model, inputs, 10, lm.stop_ids, lm.tokenizer.pad_token_id, prefix_lengths=shared, store=lm.prefixes
        )
        for lm in (stored, plain)
    ]
    assert out[0].tokens == out[1].tokens
    rows = [(q, p) for p in prompts for q in range(len(questions))]
    losses = [lm.continuation_losses(questions, rows) for lm in (stored, plain)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


@pytest.mark.parametrize("control_weight", [0.0, 0.2])
def test_the_gradient_pass_reads_the_question_from_the_store(parity_task, control_weight):
    stored, plain = with_and_without_store()
    reference = plain_model(stored)
    grads = []
    for lm in (stored, plain):
        scorer = scorer_for(lm, parity_task)  # the scorer pins its examples' chat before the prompt
        prompt = lm.encode(parity_task.initial_prompt)
        seqs, spans = scorer.sequences(prompt, scorer.score(prompt).reasonings)
        hits = lm.prefixes.hits if lm.prefixes else 0
        pg = position_gradient(lm, seqs, spans, scorer.prompt_starts(), prompt, 2, control_weight, 1.0)
        grads.append(pg.grads)
        if lm is stored:
            assert len(stored.prefixes.entries) == len(parity_task.train)
            # each question came from the store, but for its last token when its logits score the prompt's first
            read = [start - (1 if control_weight else 0) for start in scorer.prompt_starts()]
            assert lm.prefixes.hits - hits == sum(read)
            expected = one_hot_gradient(reference, seqs, spans, scorer.prompt_starts(), prompt, 2, control_weight, 1.0)
            direction = pg.grads.mean(0)
            for c in (10, 20, 30):
                assert float(lm.embedding_matrix[c] @ direction) == pytest.approx(expected[c].item(), abs=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_a_prefix_longer_than_a_sliding_window_is_not_stored():
    lm = tiny_language_model(seed=3)
    lm.model.config.sliding_window = 6  # a sliding layer's cache keeps only the last window - 1 tokens
    lm.pin_prefixes([lm.encode("ab"), lm.encode("a much longer question about the number 7")])
    assert [len(k) for k in lm.prefixes.entries] == [len(lm.encode("ab"))]


def test_a_negative_size_is_refused():
    with pytest.raises(ValueError, match="prefix_cache_mb=-1"):
        tiny_language_model(prefix_cache_mb=-1)

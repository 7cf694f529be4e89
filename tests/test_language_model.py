"""LanguageModel: chat slots, left padding, generation and span losses against plain computations."""

import pytest
import torch
import torch.nn.functional as F

from greater.models.language_model import LanguageModel
from greater.testing import tiny_language_model


def full_logits(lm, seq):
    with torch.no_grad():
        return lm.model(input_ids=torch.tensor([seq])).logits[0]


def test_prompt_slot_places_prompt_after_question(tiny_lm):
    before, after = tiny_lm.prompt_slot("Q?", "after")
    text = tiny_lm.decode(before + tiny_lm.encode("P") + after)
    assert text == "<s><|user|>Q?\nP</s><|assistant|>"


def test_prompt_slot_before_and_system(tiny_lm):
    b, a = tiny_lm.prompt_slot("Q?", "before")
    assert tiny_lm.decode(b + tiny_lm.encode("P") + a) == "<s><|user|>P\nQ?</s><|assistant|>"
    b, a = tiny_lm.prompt_slot("Q?", "system")
    assert tiny_lm.decode(b + tiny_lm.encode("P") + a) == "<s><|system|>P</s><|user|>Q?</s><|assistant|>"


def test_plain_template_for_base_models():
    lm = tiny_language_model(chat_template=False)
    b, a = lm.prompt_slot("Q?", "after")
    assert lm.decode(b + lm.encode("P") + a) == "<s>Question: Q?\nP\nAnswer:"


def test_span_losses_match_unpadded_cross_entropy(tiny_lm):
    seqs = [tiny_lm.encode("hello world, this is long"), tiny_lm.encode("short one")]
    spans = [(10, 14), (3, 6)]
    losses, exact = tiny_lm.span_losses(seqs, spans)
    for seq, (s, e), loss, match in zip(seqs, spans, losses, exact):
        logits = full_logits(tiny_lm, seq)
        expected = F.cross_entropy(logits[s - 1 : e - 1], torch.tensor(seq[s:e]))
        assert torch.allclose(loss, expected, atol=1e-5)
        assert bool(match) == bool((logits[s - 1 : e - 1].argmax(-1) == torch.tensor(seq[s:e])).all())


def test_span_loss_reads_only_the_span(tiny_lm):
    seq = tiny_lm.encode("abcdefghij")
    base, _ = tiny_lm.span_losses([seq], [(5, 7)])
    changed_after = seq[:7] + tiny_lm.encode("XYZ")
    after, _ = tiny_lm.span_losses([changed_after], [(5, 7)])
    assert torch.allclose(base, after, atol=1e-6)


def test_batched_generation_equals_one_at_a_time(tiny_lm):
    inputs = [tiny_lm.encode("a"), tiny_lm.encode("a much longer input"), tiny_lm.encode("mid size")]
    batched = tiny_lm.generate(inputs, max_new_tokens=6)
    single = [tiny_lm.generate([x], max_new_tokens=6)[0] for x in inputs]
    assert batched == single
    # greedy: each token is the argmax given everything before it
    seq = inputs[1] + batched[1]
    logits = full_logits(tiny_lm, seq)
    for t in range(len(inputs[1]), len(seq)):
        assert logits[t - 1].argmax().item() == seq[t]


def test_generation_stops_at_the_stop_token(tiny_lm, monkeypatch):
    eos = tiny_lm.tokenizer.eos_token_id
    assert tiny_lm._until_stop([5, 6, eos, 7]) == [5, 6]
    assert tiny_lm._until_stop([5, 6]) == [5, 6]


def test_weights_never_require_grad(tiny_lm):
    assert not any(p.requires_grad for p in tiny_lm.model.parameters())


def test_generation_reports_progress_after_each_batch(tiny_lm):
    reports = []
    tiny_lm.on_generation = lambda done, total: reports.append((done, total))
    old_batch = tiny_lm.batch_size
    try:
        tiny_lm.batch_size = 2
        tiny_lm.generate([tiny_lm.encode(f"q{i}") for i in range(5)], max_new_tokens=2)
    finally:
        tiny_lm.batch_size, tiny_lm.on_generation = old_batch, None
    assert reports == [(2, 5), (4, 5), (5, 5)]


def test_generation_batches_respect_the_size_and_token_caps(tiny_lm):
    lengths = [50, 40, 5, 3, 10, 5]  # shortest first: 3 (index 3), 5 (2), 5 (5), 10 (4), 40 (1), 50 (0)
    old = tiny_lm.batch_size, tiny_lm.batch_tokens
    try:
        tiny_lm.batch_size, tiny_lm.batch_tokens = 3, 0
        assert tiny_lm.generation_batches(lengths) == [[3, 2, 5], [4, 1, 0]]
        tiny_lm.batch_size, tiny_lm.batch_tokens = 3, 30
        batches = tiny_lm.generation_batches(lengths)
        assert batches == [[3, 2, 5], [4], [1], [0]]  # a 40-token input over the budget still goes alone
        for batch in batches:
            assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 30
    finally:
        tiny_lm.batch_size, tiny_lm.batch_tokens = old


@pytest.mark.parametrize(("batch_size", "batch_tokens"), [(0, 0), (4, -1)])
def test_bad_batching_names_both_settings_and_the_fix(tiny_lm, batch_size, batch_tokens):
    with pytest.raises(ValueError, match=r"model\.batch_size=.*model\.batch_tokens=.*set batch_size >= 1"):
        LanguageModel(tiny_lm.model, tiny_lm.tokenizer, batch_size=batch_size, batch_tokens=batch_tokens)

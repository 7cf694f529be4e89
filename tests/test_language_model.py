"""LanguageModel: chat slots, left padding, generation and span losses against plain computations."""

import pytest
import torch
import torch.nn.functional as F

from greater.models.chat import ChatFormat
from greater.models.language_model import LanguageModel
from tests.reference import full_logits
from tests.tiny import tiny_language_model, tiny_tokenizer


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


def test_chat_format_needs_no_weights():
    """ChatFormat renders from a tokenizer alone: slots, the system prompt, plain turns and bad placements."""
    chat = ChatFormat(tiny_tokenizer(), use_chat_template=True, system_prompt="Be brief.")
    tok = chat.tokenizer
    before, after = chat.slot("Q?", "after")
    assert tok.decode(before + chat.encode("P") + after) == "<s><|system|>Be brief.</s><|user|>Q?\nP</s><|assistant|>"
    assert tok.decode(chat.turn("hi")) == "<s><|system|>Be brief.</s><|user|>hi</s><|assistant|>"
    assert tok.decode(chat.turn("hi", system="Other.")) == "<s><|system|>Other.</s><|user|>hi</s><|assistant|>"
    plain = ChatFormat(tiny_tokenizer(chat_template=False), use_chat_template=False)
    b, a = plain.slot("Q?", "before")
    assert plain.tokenizer.decode(b + plain.encode("P") + a) == "<s>Question: P\nQ?\nAnswer:"
    with pytest.raises(ValueError, match="unknown prompt placement 'middle'; use one of after, before, system"):
        chat.slot("Q?", "middle")


def test_span_losses_match_unpadded_cross_entropy(tiny_lm, tiny_reference):
    seqs = [tiny_lm.encode("hello world, this is long"), tiny_lm.encode("short one")]
    spans = [(10, 14), (3, 6)]
    losses, exact = tiny_lm.span_losses(seqs, spans)
    for seq, (s, e), loss, match in zip(seqs, spans, losses, exact):
        logits = full_logits(tiny_reference, seq)
        expected = F.cross_entropy(logits[s - 1 : e - 1], torch.tensor(seq[s:e]))
        assert torch.allclose(loss, expected, atol=1e-5)
        assert bool(match) == bool((logits[s - 1 : e - 1].argmax(-1) == torch.tensor(seq[s:e])).all())


def test_span_loss_reads_only_the_span(tiny_lm):
    seq = tiny_lm.encode("abcdefghij")
    base, _ = tiny_lm.span_losses([seq], [(5, 7)])
    changed_after = seq[:7] + tiny_lm.encode("XYZ")
    after, _ = tiny_lm.span_losses([changed_after], [(5, 7)])
    assert torch.allclose(base, after, atol=1e-6)


def test_batched_generation_equals_one_at_a_time(tiny_lm, tiny_reference):
    inputs = [tiny_lm.encode("a"), tiny_lm.encode("a much longer input"), tiny_lm.encode("mid size")]
    batched = tiny_lm.generate(inputs, max_new_tokens=6)
    single = [tiny_lm.generate([x], max_new_tokens=6)[0] for x in inputs]
    assert batched == single
    # greedy: each token is the argmax given everything before it
    seq = inputs[1] + batched[1]
    logits = full_logits(tiny_reference, seq)
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


# ---- memory and devices ---------------------------------------------------------------------------


def out_of_memory_above(lm, monkeypatch, max_rows):
    """Patch the model's forward to fail like a GPU that fits at most `max_rows` sequences."""
    forward = lm.model.forward
    calls = []

    def limited(*args, **kwargs):
        rows = (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs["inputs_embeds"]).shape[0]
        calls.append(rows)
        if rows > max_rows:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(lm.model, "forward", limited)
    return calls


@pytest.fixture
def one_thread():
    """One torch thread (the out-of-memory fake counts rows per forward call)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_batched_passes_halve_and_retry_on_out_of_memory(monkeypatch, one_thread):
    lm = tiny_language_model(seed=0, batch_size=8)
    inputs = [lm.encode(f"question number {i}") for i in range(6)]
    spans = [(3, 8)] * 6
    expected_tokens = lm.generate(inputs, max_new_tokens=5)
    expected_losses, expected_exact = lm.span_losses(inputs, spans)
    calls = out_of_memory_above(lm, monkeypatch, max_rows=2)
    assert lm.generate(inputs, max_new_tokens=5) == expected_tokens
    losses, exact = lm.span_losses(inputs, spans)
    assert torch.allclose(losses, expected_losses, atol=1e-5) and torch.equal(exact, expected_exact)
    assert calls[:3] == [6, 3, 1]  # tried whole, then halved until it fit


def test_out_of_memory_on_a_single_sequence_is_raised(monkeypatch):
    lm = tiny_language_model(seed=0)
    out_of_memory_above(lm, monkeypatch, max_rows=0)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        lm.span_losses([lm.encode("abc")], [(1, 3)])


def test_loss_passes_have_their_own_batch_size(monkeypatch):
    lm = tiny_language_model(seed=0, batch_size=8, loss_batch_size=3)
    calls = out_of_memory_above(lm, monkeypatch, max_rows=100)  # records the rows of every forward pass
    inputs = [lm.encode(f"question number {i}") for i in range(7)]
    lm.span_losses(inputs, [(3, 8)] * 7)
    assert calls == [3, 3, 1]


def saved_tiny_model(path, dtype):
    lm = tiny_language_model(seed=0)
    lm.model.to(dtype).save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return path


def test_dtype_auto_keeps_the_checkpoints_dtype_and_weights_load_on_the_device(tmp_path):
    from greater.config import ModelConfig

    path = saved_tiny_model(tmp_path / "tiny", torch.bfloat16)
    lm = LanguageModel.from_config(ModelConfig(name="tiny", source="local", path=str(path), dtype="auto"))
    assert lm.model.dtype == torch.bfloat16 and lm.device.type == "cpu"
    lm = LanguageModel.from_config(ModelConfig(name="tiny", source="local", path=str(path), dtype="float32"))
    assert lm.model.dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_cuda_without_a_gpu_is_a_one_line_error(tmp_path):
    from greater.config import ModelConfig

    cfg = ModelConfig(name="tiny", source="local", path=str(tmp_path), device="cuda")
    with pytest.raises(ValueError, match=r"model\.device=cuda: no CUDA device is visible; set model\.device to cpu"):
        LanguageModel.from_config(cfg)


def test_gradient_and_shared_prefix_passes_halve_and_retry_on_out_of_memory(monkeypatch):
    from greater.engine.gradient import position_gradient

    lm = tiny_language_model(seed=0, batch_size=8)
    prompt = lm.encode("think well")
    sequences = [lm.encode(f"q {i} ") + prompt + lm.encode(" so the answer is yes") for i in range(5)]
    starts = [len(lm.encode(f"q {i} ")) for i in range(5)]
    spans = [(len(s) - 1, len(s)) for s in sequences]
    prefixes = [lm.encode(f"question {i}") for i in range(5)]
    rows = [(p, prompt) for p in range(5)] + [(p, lm.encode(" other")) for p in range(5)]

    def both():
        gradient = position_gradient(lm, sequences, spans, starts, prompt, 1, 0.2, 1.0)
        return gradient, lm.continuation_losses(prefixes, rows)

    expected_grad, expected_losses = both()
    calls = out_of_memory_above(lm, monkeypatch, max_rows=2)
    grad, losses = both()
    assert torch.allclose(grad.grads, expected_grad.grads, atol=1e-5)
    assert torch.allclose(grad.next_token_logits, expected_grad.next_token_logits, atol=1e-4)
    assert losses == pytest.approx(expected_losses, abs=1e-5)
    assert calls[:3] == [5, 2, 2]  # the gradient pass: whole batch failed, then halves (2 rows) fit

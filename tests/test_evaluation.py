"""Evaluation: canned generations give known accuracy; log-likelihood mode against a direct computation."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from greater.config import EvaluationConfig
from greater.engine.frame import extractor_ids, prompt_slots
from greater.evaluation import evaluate_prompt, wilson_interval
from greater.evaluation.evaluator import most_likely_options
from greater.tasks.answers import normalizer_for, parser_for
from greater.tasks.base import Example, Task
from tests.reference import full_logits, plain_model
from tests.tiny import tiny_language_model


def yes_no_task():
    examples = [Example(f"Q{i}?", "Yes" if i % 2 else "No", id=f"q{i}") for i in range(4)]
    return Task(
        "yn",
        train=[],
        test=examples,
        answer_type="yes_no",
        options=["Yes", "No"],
        parse=parser_for("yes_no", None),
        normalize=normalizer_for("yes_no"),
    )


def test_wilson_interval_against_known_values():
    low, high = wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and high == pytest.approx(0.4345, abs=1e-4)
    # independent: the interval's ends solve |p - x| = z * sqrt(x (1 - x) / n)
    z, n, p = 1.959964, 10, 0.8
    for x in wilson_interval(8, 10):
        assert abs(p - x) == pytest.approx(z * math.sqrt(x * (1 - x) / n), abs=1e-9)


def test_generate_mode_parses_canned_answers(tiny_lm, monkeypatch, tmp_path):
    task = yes_no_task()
    answers = {"Q0?": " No.", "Q1?": " yes!", "Q2?": " maybe", "Q3?": " No"}  # right, right, unparsed, wrong
    calls = []

    def fake_generate_and_answer(inputs, max_new_tokens, forced, answer_tokens):
        calls.append((max_new_tokens, answer_tokens))
        assert forced == extractor_ids(tiny_lm, task)
        texts = [tiny_lm.decode(ids) for ids in inputs]
        canned = [tiny_lm.encode(next(a for q, a in answers.items() if q in t)) for t in texts]
        return [tiny_lm.encode("thinking") for _ in inputs], canned

    monkeypatch.setattr(tiny_lm, "generate_and_answer", fake_generate_and_answer)
    result = evaluate_prompt(tiny_lm, task, task.test, "Think.", EvaluationConfig(max_answer_tokens=5), 7)
    assert calls == [(7, 8)]  # max_answer_tokens=5 raised to the longest gold (" Yes": 4 byte tokens) + 4
    assert [p.correct for p in result.predictions] == [True, True, False, False]
    assert result.accuracy == 0.5 and result.n_unparsed == 1
    assert result.metrics()["test/acc"] == 0.5 and result.metrics()["test/n"] == 4
    path = tmp_path / "predictions.jsonl"
    result.write_predictions(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["parsed_answer"] for r in rows] == ["No", "Yes", None, "No"]
    assert rows[1]["reasoning"] == "thinking" and rows[1]["gold"] == "Yes"


def test_loglik_picks_the_most_likely_option(tiny_lm, tiny_reference):
    task = yes_no_task()
    slots = prompt_slots(tiny_lm, task, task.test, "after")
    heads = [s.with_prompt(tiny_lm.encode("P")) + extractor_ids(tiny_lm, task) for s in slots]
    chosen = most_likely_options(tiny_lm, task, heads)
    for head, pick in zip(heads, chosen):
        totals = {}
        for option in task.options:
            target = tiny_lm.encode(" " + option)
            logits = full_logits(tiny_reference, head + target)
            logp = F.log_softmax(logits[len(head) - 1 : -1], -1)
            totals[option] = sum(logp[i, t].item() for i, t in enumerate(target))
        assert pick == max(totals, key=totals.get)


def test_loglik_without_options_names_the_fix(tiny_lm):
    task = Task("free", train=[], test=[Example("q", "a")])
    with pytest.raises(ValueError, match="use evaluation.mode=generate"):
        evaluate_prompt(tiny_lm, task, task.test, "P", EvaluationConfig(mode="loglik"), 2)


def greedy_by_full_forwards(lm, reference, tokens: list[int], max_new_tokens: int) -> list[int]:
    """Independent reference: greedy decoding with one full, uncached, unpadded forward per token of
    `reference`, lm's weights in a plain transformers model (tests.reference); lm's stop tokens."""
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = int(full_logits(reference, tokens + out)[-1].argmax())
        if token in lm.stop_ids:
            break
        out.append(token)
    return out


QUESTIONS = ["Is 3 odd?", "a", "What comes after Tuesday, and why?", "2+2", "Name a colour.", "Sort: b a c"]


@pytest.mark.parametrize(("stops", "check_every"), [("model", 8), ("early", 8), ("early", 1)])
def test_answers_read_from_the_reasoning_cache_equal_the_two_pass_way(stops, check_every):
    """evaluate_prompt decodes each answer from its reasoning's cache; the predictions (texts and correctness)
    equal generating the reasoning, then generating the answer again from question + prompt + reasoning +
    extractor, both computed here with plain full forwards, in float32. No pass reruns the question."""
    lm = tiny_language_model(seed=1, batch_size=2)  # several batches, sorted by length: the order is restored
    lm.check_every = check_every
    assert lm.model.dtype == torch.float32
    reference = plain_model(lm)
    first_char = lambda text: text.strip()[:1] or None  # noqa: E731  a parse that some answers pass by chance
    blank = Task("t", train=[], test=[Example(q, "?", id=str(i)) for i, q in enumerate(QUESTIONS)], parse=first_char)
    prompt, reasoning_tokens, cfg = "Think.", 12, EvaluationConfig(max_answer_tokens=10)
    inputs = [s.with_prompt(lm.encode(prompt)) for s in prompt_slots(lm, blank, blank.test, "after")]
    if stops == "early":  # a token the model emits often: reasoning and answers end at a stop, at varied steps
        free = greedy_by_full_forwards(lm, reference, inputs[0], reasoning_tokens)
        lm.stop_ids = set(lm.stop_ids) | {free[3]}
    extractor = extractor_ids(lm, blank)
    reasonings = [greedy_by_full_forwards(lm, reference, x, reasoning_tokens) for x in inputs]
    answers = [greedy_by_full_forwards(lm, reference, x + r + extractor, 10) for x, r in zip(inputs, reasonings)]
    raws = [lm.decode(a) for a in answers]
    # Golds: the first character of the answer for even questions (correct), "#" for odd ones (wrong).
    golds = [(first_char(raw) or "#") if i % 2 == 0 else "#" for i, raw in enumerate(raws)]
    examples = [Example(q, g, id=str(i)) for i, (q, g) in enumerate(zip(QUESTIONS, golds))]
    task = Task("t", train=[], test=examples, parse=first_char)
    if stops == "early":
        assert any(len(r) < reasoning_tokens for r in reasonings)  # some reasonings end at the stop

    widths = []
    forward = lm.model.forward

    def recording(*args, **kwargs):
        widths.append(kwargs["input_ids"].shape[1])
        return forward(*args, **kwargs)

    lm.model.forward = recording
    try:
        result = evaluate_prompt(lm, task, task.test, prompt, cfg, reasoning_tokens)
    finally:
        del lm.model.forward
    assert [p.reasoning for p in result.predictions] == [lm.decode(r) for r in reasonings]
    assert [p.raw_answer for p in result.predictions] == raws
    assert [p.parsed_answer for p in result.predictions] == [first_char(raw) for raw in raws]
    expected = [task.is_correct(first_char(raw), ex) for raw, ex in zip(raws, task.test)]
    assert [p.correct for p in result.predictions] == expected
    assert any(expected) and not all(expected)
    assert max(widths) == max(len(x) for x in inputs)  # the widest pass is the questions' prefill

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

    def fake_generate(inputs, max_new_tokens):
        calls.append(max_new_tokens)
        if max_new_tokens == 7:  # reasoning
            return [tiny_lm.encode("thinking") for _ in inputs]
        texts = [tiny_lm.decode(ids) for ids in inputs]
        return [tiny_lm.encode(next(a for q, a in answers.items() if q in t)) for t in texts]

    monkeypatch.setattr(tiny_lm, "generate", fake_generate)
    result = evaluate_prompt(tiny_lm, task, task.test, "Think.", EvaluationConfig(max_answer_tokens=5), 7)
    assert calls == [7, 8]  # max_answer_tokens=5 raised to the longest gold (" Yes": 4 byte tokens) + 4
    assert [p.correct for p in result.predictions] == [True, True, False, False]
    assert result.accuracy == 0.5 and result.n_unparsed == 1
    assert result.metrics()["test/acc"] == 0.5 and result.metrics()["test/n"] == 4
    path = tmp_path / "predictions.jsonl"
    result.write_predictions(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["parsed_answer"] for r in rows] == ["No", "Yes", None, "No"]
    assert rows[1]["reasoning"] == "thinking" and rows[1]["gold"] == "Yes"


def test_loglik_picks_the_most_likely_option(tiny_lm):
    task = yes_no_task()
    slots = prompt_slots(tiny_lm, task, task.test, "after")
    heads = [s.with_prompt(tiny_lm.encode("P")) + extractor_ids(tiny_lm, task) for s in slots]
    chosen = most_likely_options(tiny_lm, task, heads)
    for head, pick in zip(heads, chosen):
        totals = {}
        for option in task.options:
            target = tiny_lm.encode(" " + option)
            seq = torch.tensor([head + target])
            with torch.no_grad():
                logits = tiny_lm.model(input_ids=seq).logits[0]
            logp = F.log_softmax(logits[len(head) - 1 : -1], -1)
            totals[option] = sum(logp[i, t].item() for i, t in enumerate(target))
        assert pick == max(totals, key=totals.get)


def test_loglik_without_options_names_the_fix(tiny_lm):
    task = Task("free", train=[], test=[Example("q", "a")])
    with pytest.raises(ValueError, match="use evaluation.mode=generate"):
        evaluate_prompt(tiny_lm, task, task.test, "P", EvaluationConfig(mode="loglik"), 2)

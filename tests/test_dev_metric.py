"""The final pick on dev measures what the test split measures (evaluation.dev_metric=parsed, the default), with
the teacher-forced exact match as the named alternative: the two seams agree example for example, a model
whose answers parse right but do not match the gold tokens is picked differently, the reasonings are the
scorer's (never generated twice) and the answers are counted, and every method goes through it."""

from __future__ import annotations

import zlib

import pytest

import greater
from greater.config import DevMetric, EvaluationConfig, EvaluationMode
from greater.engine.rollouts import Scorer
from greater.evaluation.dev import dev_accuracies, pick_on_dev
from greater.evaluation.evaluator import evaluate_prompt
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.registry import build_optimizer
from greater.tasks.answers import parse_choice
from greater.tasks.base import Example, Task
from tests.test_baselines import ScriptedOptimizer, small_config
from tests.tiny import tiny_language_model

# max_answer_tokens=1: answers of up to 8 tokens (answer_token_limit: the longest gold, " Yes", plus 4)
PARSED = EvaluationConfig(max_answer_tokens=1)
TEACHER_FORCED = EvaluationConfig(max_answer_tokens=1, dev_metric=DevMetric.teacher_forced)


def hash_parity_task(n_dev: int = 8) -> Task:
    """Yes/No questions whose parser reads any text as Yes or No by a checksum: a random tiny model's answers
    are then right about half the time, differently for each prompt, while never the gold tokens exactly."""
    examples = [Example(f"Is {n} even?", "Yes" if n % 2 == 0 else "No", id=str(n)) for n in range(6 + n_dev)]
    return Task(
        "hash_parity",
        train=examples[:4],
        dev=examples[4 : 4 + n_dev],
        test=examples[4 + n_dev :],
        answer_type="yes_no",
        options=["Yes", "No"],
        parse=lambda raw: "Yes" if zlib.crc32(raw.encode()) % 2 == 0 else "No",
    )


PROMPTS = ["Think step by step.", "Be brief.", "Check each number twice.", "Answer now."]


@pytest.mark.parametrize("mode", [EvaluationMode.generate, EvaluationMode.loglik])
def test_the_parsed_dev_score_is_the_evaluators_accuracy_on_the_same_examples(mode):
    lm, task = tiny_language_model(), hash_parity_task()
    cfg = EvaluationConfig(mode=mode, max_answer_tokens=1)
    scorer = Scorer(lm, task, "after", 6)
    scores = dev_accuracies(scorer, [lm.encode(p) for p in PROMPTS], task.dev, cfg)
    evaluated = [evaluate_prompt(lm, task, task.dev, p, cfg, 6).accuracy for p in PROMPTS]
    assert scores == evaluated
    if mode == EvaluationMode.generate:  # (the random model prefers one option whatever the prompt)
        assert len(set(scores)) > 1  # the prompts differ, so agreeing is not agreeing on a constant


def test_the_parsed_pick_reuses_the_scorers_reasonings_and_counts_the_answers():
    lm, task = tiny_language_model(), hash_parity_task()
    scorer = Scorer(lm, task, "after", 6)
    prompts = [lm.encode(p) for p in PROMPTS[:2]]
    rows = scorer.rollouts(prompts, task.dev)  # what the search already rolled out
    before = lm.usage.flat()
    pick = pick_on_dev(scorer, prompts, task.dev, PARSED)
    after = lm.usage.flat()
    moved = {
        k: after.get(k, 0) - before.get(k, 0) for k in ("task.rollouts", "task.generations", "task.tokens_generated")
    }
    heads = [
        slot.with_prompt(p) + r.reasoning + lm.encode("\n" + task.extractor)
        for p, row in zip(prompts, rows)
        for slot, r in zip(scorer.slots(task.dev), row)
    ]
    answers = lm.generate(heads, 8)  # the answers of PARSED
    assert moved["task.rollouts"] == 0  # no reasoning generated again
    # only the short answers after the cached reasonings, counted under the task role like the rollouts
    assert moved == {
        "task.rollouts": 0,
        "task.generations": len(heads),
        "task.tokens_generated": sum(map(len, answers)),
    }
    assert pick.dev_metric == "parsed" and pick.dev_acc == max(dev_accuracies(scorer, prompts, task.dev, PARSED))


# ---- a model whose answers parse right but are not the gold tokens -------------------------------------------
LETTERS = "ABCD"
SCRIPT = {
    "Write the option.": lambda gold, i: f" {gold}" if i == 0 else " (E)",  # exact once: 1/4 either way
    "Write the letter.": lambda gold, i: f" {gold[1]}.",  # " B.": parses to (B), never the tokens " (B)"
}


def scripted_lm(task: Task):
    """The tiny model with its reasoning and answers taken from SCRIPT by the prompt in the input (the answer
    after the extractor; the reasoning otherwise), and scored honestly against the gold tokens."""
    lm = tiny_language_model()
    extractor = lm.encode("\n" + task.extractor)
    index = {ex.question: i for i, ex in enumerate(task.dev)}

    def answer(ids):
        text = lm.decode(list(ids))
        prompt = next(p for p in SCRIPT if p in text)
        i = next(i for q, i in index.items() if q in text)
        return lm.encode(SCRIPT[prompt](task.dev[i].answer, i))

    def generate(inputs, max_new_tokens, *args, **kwargs):
        lm.count("generations", len(inputs))
        ends = [list(x[-len(extractor) :]) == extractor for x in inputs]
        return [answer(x)[:max_new_tokens] if end else lm.encode(" Let me see.") for x, end in zip(inputs, ends)]

    def generate_and_score(inputs, max_new_tokens, drafts=None, tails=None, prefix_lengths=None):
        import torch

        reasonings = generate(inputs, max_new_tokens)
        exact = [answer(x)[: len(t.tokens) - t.score_from] == t.tokens[t.score_from :] for x, t in zip(inputs, tails)]
        return reasonings, torch.tensor([0.0 if e else 1.0 for e in exact]), torch.tensor(exact)

    def generate_and_answer(inputs, max_new_tokens, forced, answer_tokens):
        return generate(inputs, max_new_tokens), [answer(x)[:answer_tokens] for x in inputs]

    lm.generate, lm.generate_and_score, lm.generate_and_answer = generate, generate_and_score, generate_and_answer
    return lm


def letter_task() -> Task:
    examples = [Example(f"Pick {c.lower()}.", f"({c})", id=c) for c in LETTERS]
    return Task("letters", train=examples, dev=examples, test=examples, answer_type="choice", parse=parse_choice)


def test_answers_that_parse_right_but_miss_the_gold_tokens_pick_differently_by_metric():
    task = letter_task()
    lm = scripted_lm(task)
    prompts = [lm.encode(p) for p in SCRIPT]
    tf = pick_on_dev(Scorer(lm, task, "after", 4), prompts, task.dev, TEACHER_FORCED)
    parsed = pick_on_dev(Scorer(lm, task, "after", 4), prompts, task.dev, PARSED)
    assert (tf.index, tf.dev_acc, tf.dev_metric) == (0, 0.25, "exact_match")  # " B." is never " (B)"
    assert (parsed.index, parsed.dev_acc, parsed.dev_metric) == (1, 1.0, "parsed")
    # the pick's score is what the test split would report for the picked prompt
    assert parsed.dev_acc == evaluate_prompt(lm, task, task.dev, "Write the letter.", PARSED, 4).accuracy


# ---- every method's final pick ---------------------------------------------------------------------------------
def run_method(method: str, evaluation: EvaluationConfig):
    lm, task = tiny_language_model(), hash_parity_task(n_dev=4)
    lm.complete = ScriptedOptimizer(lm)
    ctx = context_for(lm, task, max_reasoning_tokens=3, seed=1, evaluation=evaluation)
    overrides = {"n_steps": 1, "topk": 4, "n_groups": 2, "group_size": 2, "min_candidates": 2}
    if method == "gepa":
        pytest.importorskip("gepa")
        overrides = {"max_metric_calls": 12, "minibatch_size": 2, "reflection_tokens": 8}
    return lm, task, optimize(build_optimizer(small_config(method, **overrides)), lm, task, ctx)


@pytest.mark.parametrize("method", ["zs_cot", "greater", "ape", "apo", "pe2", "textgrad", "opro", "gepa"])
def test_every_method_reports_the_test_splits_accuracy_of_its_final_prompt_on_dev(method):
    lm, task, result = run_method(method, PARSED)
    assert result.dev_metric == "parsed"
    assert result.dev_acc == evaluate_prompt(lm, task, task.dev, result.final_prompt, PARSED, 3).accuracy


def test_the_teacher_forced_pick_is_the_named_alternative():
    lm, task, result = run_method("greater", TEACHER_FORCED)
    assert result.dev_metric == "exact_match"
    scorer = Scorer(lm, task, "after", 3)
    assert result.dev_acc == scorer.score_text(result.final_prompt, task.dev).accuracy


def test_defaults_and_the_paper_experiments_pick_by_the_parsed_answer():
    for overrides in ([], ["experiment=paper_bbh"], ["experiment=paper_gsm8k"], ["experiment=paper_bbh_scripts"]):
        assert greater.compose(overrides).evaluation.dev_metric == DevMetric.parsed, overrides
    assert greater.compose(["evaluation.dev_metric=teacher_forced"]).evaluation.dev_metric == "teacher_forced"

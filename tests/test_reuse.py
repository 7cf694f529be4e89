"""Reasoning reuse: greedy decoding from a draft is plain greedy decoding, token for token."""

import pytest
import torch

from greater.engine.decode import greedy_decode
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
from tests.reference import plain_model
from tests.tiny import tiny_language_model

TEXTS = ["a", "a much longer input here", "mid size", "Is 4 even? think"]


def plain_greedy(lm, inputs, max_new_tokens, stop_ids):
    """Independent reference: transformers' own generate, one input at a time (no padding at all), on lm's
    weights in a plain transformers model (tests.reference: none of the engine's kernels)."""
    reference, outs = plain_model(lm), []
    for x in inputs:
        ids = torch.tensor([x])
        out = reference.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=sorted(stop_ids),
            pad_token_id=lm.tokenizer.pad_token_id,
        )[0, len(x) :].tolist()
        stop = next((n for n, t in enumerate(out) if t in stop_ids), len(out))
        outs.append(out[:stop])
    return outs


@pytest.fixture(scope="module")
def lm():
    return tiny_language_model(seed=0)


def drafts_of(greedy, kind):
    wrong = 7  # a byte token; each draft below puts it where greedy decoding has another token
    if kind == "identical":
        return [list(g) for g in greedy]
    if kind == "start":
        return [[wrong if g[0] != wrong else 8] + g[1:] for g in greedy]
    if kind == "middle":
        return [g[:5] + [wrong if g[5] != wrong else 8] + g[6:] for g in greedy]
    if kind == "longer":
        return [g + [wrong] * 9 for g in greedy]
    if kind == "mixed":
        return [list(greedy[0]), [], greedy[2][:3], [wrong] * 30]
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["identical", "start", "middle", "longer", "mixed"])
def test_decoding_from_a_draft_equals_plain_greedy_in_a_left_padded_batch(lm, kind):
    inputs = [lm.encode(t) for t in TEXTS]  # different lengths: the batch is left-padded
    expected = plain_greedy(lm, inputs, 20, lm.stop_ids)
    decoded = greedy_decode(lm.model, inputs, 20, lm.stop_ids, lm.tokenizer.pad_token_id, drafts_of(expected, kind))
    assert decoded.tokens == expected
    if kind == "identical":
        assert decoded.accepted == [20] * 4 and decoded.decode_steps == 0  # nothing left to generate
    if kind == "middle":
        assert decoded.accepted == [5] * 4


def test_stop_tokens_inside_and_after_the_draft(lm):
    inputs = [lm.encode(t) for t in TEXTS]
    free = plain_greedy(lm, inputs, 20, lm.stop_ids)
    stop = {free[1][6], free[3][2]}  # tokens greedy decoding emits: rows end early at them
    expected = plain_greedy(lm, inputs, 20, stop)
    assert any(len(e) < 20 for e in expected)
    for drafts in (free, expected, [[] for _ in inputs]):
        decoded = greedy_decode(lm.model, inputs, 20, stop, lm.tokenizer.pad_token_id, drafts, check_every=3)
        assert decoded.tokens == expected


def test_language_model_generate_with_drafts_counts_reused_tokens(lm):
    inputs = [lm.encode(t) for t in TEXTS]
    plain = lm.generate(inputs, 12)
    assert plain == plain_greedy(lm, inputs, 12, lm.stop_ids)
    before = lm.usage.of("task").tokens_reused
    assert lm.generate(inputs, 12, drafts=[p[:6] for p in plain]) == plain
    assert lm.usage.of("task").tokens_reused - before == 6 * len(inputs)


def test_scorer_reuses_the_nearest_prompts_reasoning_and_gets_the_same_rollouts(parity_task):
    lm = tiny_language_model(seed=1)
    base = lm.encode("Think step by step.")
    variants = [base[:3] + [t] + base[4:] for t in lm.encode("xyz")]
    runs = {}
    for reuse in (True, False):
        scorer = context_for(lm, parity_task, max_reasoning_tokens=16).scorer
        scorer.reuse_reasoning = reuse
        scorer.rollouts([base], parity_task.train)
        first = parity_task.train[0]
        assert scorer.draft(tuple(variants[0]), first) == scorer.cache[(tuple(base), first)].reasoning
        before = lm.usage.of("task").tokens_reused
        runs[reuse] = scorer.rollouts(variants, parity_task.train)
        reused = lm.usage.of("task").tokens_reused - before
        assert (reused > 0) == reuse
    for with_draft, without in zip(runs[True], runs[False]):  # same tokens; losses equal up to float rounding
        assert [r.reasoning for r in with_draft] == [r.reasoning for r in without]
        assert [r.correct for r in with_draft] == [r.correct for r in without]
        assert [r.loss for r in with_draft] == pytest.approx([r.loss for r in without], abs=1e-5)


def test_unrelated_prompts_get_no_draft(parity_task):
    lm = tiny_language_model(seed=1)
    scorer = context_for(lm, parity_task, max_reasoning_tokens=8).scorer
    scorer.rollouts([lm.encode("Think step by step.")], parity_task.train[:1])
    assert scorer.draft(tuple(lm.encode("Be brief, always!")), parity_task.train[0]) == []
    assert scorer.draft(tuple(lm.encode("Think step by step!")), parity_task.train[0]) != []


def test_a_greater_run_ends_with_the_same_prompt_with_and_without_reuse(parity_task):
    results = {}
    for reuse in (True, False):
        lm = tiny_language_model(seed=0)
        opt = GreaterOptimizer(GreaterConfig(n_steps=2, topk=5, n_groups=2, group_size=3, min_candidates=2))
        context = context_for(lm, parity_task, max_reasoning_tokens=10)
        context.scorer.reuse_reasoning = reuse
        result = optimize(opt, lm, parity_task, context)
        results[reuse] = (result.final_prompt, [h.prompt for h in result.history], lm.usage.of("task").tokens_reused)
    assert results[True][:2] == results[False][:2]
    assert results[True][2] > 0 and results[False][2] == 0


def test_the_models_setting_is_the_scorers_default(parity_task):
    lm = tiny_language_model(seed=1, reuse_reasoning=False)
    scorer = context_for(lm, parity_task, max_reasoning_tokens=6).scorer
    base = lm.encode("Think step by step.")
    scorer.rollouts([base, base[:-1] + lm.encode("!")], parity_task.train[:2])
    assert lm.usage.of("task").tokens_reused == 0
    scorer.reuse_reasoning = True  # the scorer's own switch wins
    scorer.rollouts([base[:-1] + lm.encode("?")], parity_task.train[:2])
    assert lm.usage.of("task").tokens_reused > 0

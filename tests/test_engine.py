"""The GReaTer engine, piece by piece, on a tiny random model."""

import random

import pytest
import torch
import torch.nn.functional as F

from greater.engine import packed
from greater.engine.gradient import position_gradient, rank_by_gradient
from greater.engine.packed import onednn_works
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.greater.candidates import intersect_and_unite, propose_candidates, sample_groups
from greater.optimizers.greater.objective import PromptScore, PromptScorer
from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
from greater.optimizers.greater.state import SearchState
from tests.reference import assert_plain, full_logits, plain_model
from tests.tiny import tiny_language_model


def scorer_for(lm, task, tokens=4, control_weight=0.0):
    return PromptScorer(context_for(lm, task, max_reasoning_tokens=tokens).scorer, task.train, control_weight)


def greater(**overrides):
    return GreaterOptimizer(GreaterConfig(**overrides))


# ---- gradient --------------------------------------------------------------------------------


def one_hot_gradient(model, sequences, spans, starts, prompt_ids, j, control_weight, temperature):
    """Independent computation on `model`, a plain transformers model (tests.reference: none of the engine's
    kernels): d(mean loss)/d(one-hot at j) with full logits and no padding; the answer logits are divided by
    `temperature`, the fluency term's are not (as in the reference)."""
    assert_plain(model)
    W = model.get_input_embeddings().weight
    grads = []
    for seq, (s, e), start in zip(sequences, spans, starts):
        one_hot = F.one_hot(torch.tensor(seq), W.shape[0]).float().requires_grad_(True)
        logits = model(inputs_embeds=(one_hot @ W)[None], use_cache=False).logits[0]
        loss = F.cross_entropy(logits[s - 1 : e - 1] / temperature, torch.tensor(seq[s:e]))
        if control_weight:
            fl = F.cross_entropy(logits[start - 1 : start - 1 + len(prompt_ids)], torch.tensor(prompt_ids))
            loss = loss + control_weight * fl
        (g,) = torch.autograd.grad(loss, one_hot)
        grads.append(g[start + j])
    return torch.stack(grads).mean(0)  # [V]


CANDIDATES = list(range(10, 60))


def gradient_against_one_hot(lm, reference, task, j, control_weight, temperature, rollouts=None):
    """(the engine's gradient scores of CANDIDATES, the one-hot reference's, the gradient pass, the scorer's
    score) at position j of the task's initial prompt; `rollouts`: the reasonings to use (else the scorer's)."""
    scorer = scorer_for(lm, task)
    prompt = lm.encode(task.initial_prompt)
    current = scorer.score(prompt)
    seqs, spans = scorer.sequences(prompt, rollouts or current.reasonings)
    starts = scorer.prompt_starts()
    pg = position_gradient(lm, seqs, spans, starts, prompt, j, control_weight, temperature)
    ranked = dict(rank_by_gradient(lm, pg.grads, CANDIDATES))
    expected = one_hot_gradient(reference, seqs, spans, starts, prompt, j, control_weight, temperature)
    return ranked, expected, pg, current


@pytest.mark.parametrize("control_weight", [0.0, 0.2])
@pytest.mark.parametrize("j", [0, 3])
@pytest.mark.parametrize("temperature", [1.0, 0.2])
def test_gradient_score_equals_one_hot_gradient(tiny_lm, tiny_reference, parity_task, control_weight, j, temperature):
    ranked, expected, pg, current = gradient_against_one_hot(
        tiny_lm, tiny_reference, parity_task, j, control_weight, temperature
    )
    for c in CANDIDATES:
        assert ranked[c] == pytest.approx(expected[c].item(), abs=1e-5)
    if temperature == 1.0:  # the answer loss from the gradient pass equals the scorer's (untempered) loss
        assert pg.answer_loss.tolist() == pytest.approx(current.losses, abs=1e-5)
    else:  # tempering changes the loss, so the test above would not notice a forgotten temperature
        assert pg.answer_loss.tolist() != pytest.approx(current.losses, abs=1e-3)


@pytest.mark.skipif(not onednn_works(), reason="this torch has no oneDNN packed product: nothing is packed")
@pytest.mark.parametrize("part", ["backward", "forward"])
def test_a_wrong_packed_kernel_fails_the_one_hot_gradient_comparison(parity_task, monkeypatch, part):
    """The reference is independent of the engine's kernels: with PackedLinear's input gradient (or its
    product) 1% off, the engine's gradient no longer matches it within the tolerance above, while the
    reference itself does not move. (A reference run through lm.model would share the wrong backward.)
    A model of its own: a wrong product must not reach the session's tiny_lm or its prefix store."""
    lm = tiny_language_model(seed=0)
    reference = plain_model(lm)
    assert lm.kernels.packed_layers > 0
    args = (lm, reference, parity_task, 3, 0.2, 0.2)
    ranked, expected, _, current = gradient_against_one_hot(*args)
    assert all(ranked[c] == pytest.approx(expected[c].item(), abs=1e-5) for c in CANDIDATES)
    calls = []
    if part == "backward":
        right = packed._PackedProduct.backward

        def wrong_backward(ctx, grad):
            calls.append(1)
            grad_input, *rest = right(ctx, grad)
            return (grad_input * 1.01, *rest)

        monkeypatch.setattr(packed._PackedProduct, "backward", staticmethod(wrong_backward))
    else:
        right = packed._onednn_linear

        def wrong_product(x, weight, bias):
            calls.append(1)
            return right(x, weight, bias) * 1.01

        monkeypatch.setattr(packed, "_onednn_linear", wrong_product)
    ranked_wrong, expected_again, _, _ = gradient_against_one_hot(*args, rollouts=current.reasonings)
    assert calls  # the engine's passes ran the wrong kernel
    assert torch.equal(expected_again, expected)  # the reference did not: it has no PackedLinear
    assert not all(ranked_wrong[c] == pytest.approx(expected[c].item(), abs=1e-5) for c in CANDIDATES)


def test_ranking_is_ascending_in_gradient(tiny_lm):
    grads = torch.randn(3, tiny_lm.embedding_matrix.shape[1])
    ranked = rank_by_gradient(tiny_lm, grads, [5, 9, 30, 31])
    scores = [s for _, s in ranked]
    assert scores == sorted(scores)


def test_next_token_logits_are_the_models_distribution_at_the_position(tiny_lm, tiny_reference, parity_task):
    scorer = scorer_for(tiny_lm, parity_task)
    prompt = tiny_lm.encode(parity_task.initial_prompt)
    seqs, spans = scorer.sequences(prompt, scorer.score(prompt).reasonings)
    starts = scorer.prompt_starts()
    pg = position_gradient(tiny_lm, seqs, spans, starts, prompt, 2, 0.2, 1.0)
    for i, seq in enumerate(seqs):
        logits = full_logits(tiny_reference, seq[: starts[i] + 2])[-1]
        assert torch.allclose(pg.next_token_logits[i], logits, atol=1e-4)


# ---- proposal --------------------------------------------------------------------------------


def test_intersection_within_groups_union_across():
    topk = torch.tensor([[1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 6]])
    assert intersect_and_unite(topk, [[0, 1], [2, 3]]) == [2, 3, 4, 5]
    assert intersect_and_unite(topk, [[0, 1, 2]]) == [3]
    assert intersect_and_unite(topk, [[0, 3]]) == []


def test_k_grows_until_enough_candidates_survive():
    # Two examples whose rankings are reversed: the top-k sets overlap only once k passes half the vocabulary.
    vocab = 20
    logits = torch.stack([torch.arange(vocab).float(), -torch.arange(vocab).float()])
    allowed = torch.ones(vocab, dtype=torch.bool)
    candidates, k = propose_candidates(logits, [[0, 1]], allowed, topk=4, growth=2, min_candidates=6, max_topk=50)
    assert k == 14 and len(candidates) >= 6  # top-14 of each share 8 tokens; top-12 share only 4
    tops = [set(logits[i].topk(k).indices.tolist()) for i in range(2)]
    assert set(candidates) == tops[0] & tops[1]


def test_disallowed_tokens_are_never_proposed():
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    allowed = torch.tensor([False, True, True, True, True])
    candidates, _ = propose_candidates(logits, [[0]], allowed, topk=2, growth=1, min_candidates=1, max_topk=5)
    assert candidates == [1, 2]


def test_groups_are_seeded_and_within_range():
    a = sample_groups(10, 5, 6, random.Random(1))
    b = sample_groups(10, 5, 6, random.Random(1))
    assert a == b and len(a) == 6
    assert all(len(set(g)) == 5 and max(g) < 10 for g in a)
    assert sample_groups(3, 5, 2, random.Random(0)) == [[0, 1, 2], [0, 1, 2]]


# ---- selection and the sweep -----------------------------------------------------------------


class FakeScorer:
    """Scores prompts from a table keyed by the token at the position under test."""

    def __init__(self, table, j):
        self.table, self.j, self.calls = table, j, []

    def score(self, ids):
        self.calls.append(ids[self.j])
        acc, loss, *fluency = self.table[ids[self.j]]
        correct = [i < acc * 4 for i in range(4)]  # accuracy in quarters
        return PromptScore(list(ids), [], [loss], correct, fluency or [0.0], control_weight=0.2)

    def score_many(self, prompts):
        return [self.score(ids) for ids in prompts]


def test_scoring_several_prompts_at_once_equals_one_by_one(tiny_lm, parity_task):
    prompts = [tiny_lm.encode(text) for text in ("Think step by step.", "Be brief.", "Think step by step.")]
    together = scorer_for(tiny_lm, parity_task, 6, control_weight=0.2)
    batched = together.score_many(prompts)
    alone = scorer_for(tiny_lm, parity_task, 6, control_weight=0.2)
    for prompt, score in zip(prompts, batched):
        single = alone.score(prompt)
        assert score.reasonings == single.reasonings and score.correct == single.correct
        assert score.losses == pytest.approx(single.losses, abs=1e-5)
        assert score.fluency == pytest.approx(single.fluency, abs=1e-5)
    assert batched[0] is batched[2] and len(together.cache) == 2  # a repeated prompt is scored once


def test_reference_and_keep_current_selection_pick_different_tokens(tiny_lm):
    """Worked by hand. Current token a; gradient order b, c, d, a; two re-scored.
    (accuracy, answer CE, prompt NLL):  a (0.75, 2.0, 1.0)   b (0.5, 0.1, 5.0)   c (0.5, 0.9, 1.0)
    reference: scores b and c only (a is not in the gradient top 2); error + 0.02 x NLL gives
      b 0.5 + 0.1 = 0.60, c 0.5 + 0.02 = 0.52: c, a forced move although a is more accurate.
    keep_current: b, c and a compete by accuracy first: a (0.75) stays."""
    a, b, c, d = (tiny_lm.encode(x)[0] for x in "abcd")
    table = {a: (0.75, 2.0, 1.0), b: (0.5, 0.1, 5.0), c: (0.5, 0.9, 1.0), d: (1.0, 0.0, 0.0)}
    ranked = [(b, -3.0), (c, -2.0), (d, -1.0), (a, 0.0)]
    picks = {}
    for selection in ("reference", "keep_current"):
        opt = greater(n_rescore=2, period_early_accept=False, selection=selection)
        state = SearchState(prompt_ids=[a, a, a], initial_length=3, position=1)
        scorer = FakeScorer(table, j=1)
        chosen, rescored = opt.select(tiny_lm, scorer, state, ranked)
        picks[selection] = (chosen.prompt_ids[1], sorted(rescored))
    assert picks["reference"] == (c, sorted([b, c]))
    assert picks["keep_current"] == (a, sorted([a, b, c]))


def test_reference_selection_scores_the_current_token_only_in_the_top_and_breaks_ties_late(tiny_lm):
    """Current a ranks second: re-scored with b and c. a and c tie at error 0.25 + 0.02 x 1.0 = 0.27,
    b is worse (0.5); the later of the tied ones (c) wins, as `<=` does in the reference."""
    a, b, c = (tiny_lm.encode(x)[0] for x in "abc")
    opt = greater(n_rescore=3, period_early_accept=False, selection="reference")
    state = SearchState(prompt_ids=[a, a], initial_length=2, position=0)
    scorer = FakeScorer({a: (0.75, 0.0, 1.0), b: (0.5, 0.0, 1.0), c: (0.75, 5.0, 1.0)}, j=0)
    chosen, rescored = opt.select(tiny_lm, scorer, state, [(b, -2.0), (a, -1.0), (c, 0.0)])
    assert sorted(rescored) == sorted([a, b, c]) and chosen.prompt_ids[0] == c


def test_selection_takes_best_accuracy_then_lowest_loss(tiny_lm):
    opt = greater(n_rescore=3, period_early_accept=False, selection="keep_current")
    a, b, c, d, e = (tiny_lm.encode(x)[0] for x in "abcde")
    state = SearchState(prompt_ids=[a, a, a], initial_length=3, position=1)
    table = {a: (0.0, 1.0), b: (1.0, 2.0), c: (1.0, 0.5), d: (1.0, 0.1), e: (1.0, 0.01)}
    scorer = FakeScorer(table, j=1)
    chosen, rescored = opt.select(tiny_lm, scorer, state, [(a, -3.0), (b, -2.0), (c, -1.0), (d, 0.0), (e, 1.0)])
    assert set(rescored) == {a, b, c, d}  # the 3 best-ranked other tokens, and the current one
    assert chosen.prompt_ids[1] == d  # accuracy ties: the lowest loss wins; e was never scored


def test_selection_keeps_the_current_token_when_nothing_beats_it(tiny_lm):
    opt = greater(n_rescore=2, period_early_accept=False, selection="keep_current")
    a, b, c = (tiny_lm.encode(x)[0] for x in "abc")
    state = SearchState(prompt_ids=[a, a, a], initial_length=3, position=0)
    scorer = FakeScorer({a: (1.0, 0.2), b: (1.0, 0.3), c: (0.0, 0.0)}, j=0)
    chosen, _ = opt.select(tiny_lm, scorer, state, [(b, -2.0), (c, -1.0), (a, 0.0)])
    assert chosen.prompt_ids == [a, a, a]


def test_period_candidate_late_in_the_prompt_is_taken_at_once(tiny_lm):
    opt = greater(n_rescore=3)
    a, b, dot = (tiny_lm.encode(x)[0] for x in "ab.")
    state = SearchState(prompt_ids=[a, a, a, a], initial_length=4, position=2)
    scorer = FakeScorer({a: (0.0, 1.0), b: (1.0, 0.1), dot: (0.0, 9.0)}, j=2)
    chosen, _ = opt.select(tiny_lm, scorer, state, [(dot, -5.0), (b, -1.0), (a, 0.0)])
    assert chosen.prompt_ids[2] == dot and scorer.calls == [dot]
    state.position = 1  # before half the initial length the period gets no special treatment
    scorer = FakeScorer({a: (0.0, 1.0), b: (1.0, 0.1), dot: (0.0, 9.0)}, j=1)
    chosen, _ = opt.select(tiny_lm, scorer, state, [(dot, -5.0), (b, -1.0), (a, 0.0)])
    assert chosen.prompt_ids[1] == b


def test_sweep_advances_grows_and_wraps(tiny_lm):
    opt = greater(placeholder="_")
    words = tiny_lm.encode("go on")
    assert opt.advance(tiny_lm, words, 0) == (words, 1)
    grown, j = opt.advance(tiny_lm, words, len(words) - 1)
    assert j == len(words) and grown[:-1] == words and tiny_lm.decode(grown[-1:]) == "_"
    sentence = tiny_lm.encode("go on.")
    assert opt.advance(tiny_lm, sentence, len(sentence) - 1) == (sentence, 0)
    shout = tiny_lm.encode("go on!")  # only a period closes the prompt, as in the reference implementation
    assert opt.advance(tiny_lm, shout, len(shout) - 1)[1] == len(shout)


# ---- whole runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("selection", ["reference", "keep_current"])
def test_two_steps_record_history_and_change_the_prompt(tiny_lm, parity_task, tmp_path, selection):
    opt = greater(n_steps=2, topk=5, n_groups=2, group_size=3, selection=selection, token_filter="ascii")
    context = context_for(tiny_lm, parity_task, max_reasoning_tokens=4, run_dir=tmp_path)
    result = optimize(opt, tiny_lm, parity_task, context)
    assert [h.step for h in result.history] == [1, 2] and {h.method for h in result.history} == {"greater"}
    assert [h.details["position"] for h in result.history] == [0, 1]
    assert (tmp_path / "checkpoint.json").exists()
    first = result.history[0].details
    assert first["candidates"] and all(c["gradient_score"] is not None for c in first["candidates"])
    assert sum(c["train_loss"] is not None for c in first["candidates"]) <= 3 + 1  # n_rescore and the current token
    # the best prompt never gets worse: accuracy first, then the objective (reference: its selection loss)
    if selection == "keep_current":
        keys = [(h.best_score, -h.details["best_train_loss"]) for h in result.history]
    else:
        keys = [-h.details["best_train_loss"] for h in result.history]
    assert keys == sorted(keys)
    best = tiny_lm.encode(result.history[-1].best_prompt)
    assert result.final_prompt == tiny_lm.decode(opt.strip_placeholder(tiny_lm, best))


def test_same_seed_same_result_and_the_seed_draws_the_groups(parity_task):
    from tests.tiny import tiny_language_model

    def once(seed, topk=4, n_groups=2, group_size=2, min_candidates=2, topk_growth=2):
        lm = tiny_language_model(seed=0)
        opt = greater(
            n_steps=3,
            topk=topk,
            n_groups=n_groups,
            group_size=group_size,
            min_candidates=min_candidates,
            topk_growth=topk_growth,
        )
        r = optimize(opt, lm, parity_task, context_for(lm, parity_task, max_reasoning_tokens=4, seed=seed))
        return [h.to_dict() | {"seconds": None, "stage_seconds": None, "model_calls": None} for h in r.history]

    assert once(0) == once(0)
    # With one group of two examples and k=2, the proposals depend on which examples the seed draws:
    # seeds 0 and 3 draw different groups at step 2 (found by trying seeds 0-3 on this tiny model).
    narrow = {"topk": 2, "n_groups": 1, "group_size": 2, "min_candidates": 1, "topk_growth": 1}
    proposals = {
        s: [sorted(c["token_id"] for c in h["details"]["candidates"]) for h in once(s, **narrow)] for s in (0, 3)
    }
    assert proposals[0] != proposals[3]


def test_fluency_is_the_prompts_cross_entropy_after_the_question(tiny_lm, tiny_reference, parity_task):
    scorer = scorer_for(tiny_lm, parity_task, 4, control_weight=0.5)
    prompt = tiny_lm.encode("Be careful.")
    score = scorer.score(prompt)
    for slot, value in zip(scorer.slots, score.fluency):
        logits = full_logits(tiny_reference, slot.before + prompt)
        start = len(slot.before)
        expected = F.cross_entropy(logits[start - 1 : -1], torch.tensor(prompt)).item()
        assert value == pytest.approx(expected, abs=1e-5)
    assert score.objective == pytest.approx(score.loss + 0.5 * sum(score.fluency) / len(score.fluency))


def test_selection_halving_finishes_only_the_better_half_of_the_first_half_scores(tiny_lm, parity_task):
    """Four candidates: all four reason on the first half of the batch, the two best there (by the
    reference's selection loss, computed here on a separate scorer) on the rest; the pick is among them."""
    prompt = tiny_lm.encode("Think step by step.")
    j = 1
    ranked = [(t, float(k)) for k, t in enumerate(tiny_lm.encode("abcdef"))]
    scorer = scorer_for(tiny_lm, parity_task, 6, control_weight=0.2)
    n, half = len(scorer.examples), len(scorer.examples) // 2
    opt = greater(n_rescore=4, period_early_accept=False, token_filter="ascii", selection_halving=True)
    tokens = opt._tokens_to_rescore(tiny_lm, prompt, j, len(prompt), ranked)  # those whose text round-trips
    assert len(tokens) == 4
    state = SearchState(prompt_ids=list(prompt), initial_length=len(prompt), position=j)
    before = tiny_lm.usage.of("task").rollouts
    chosen, rescored = opt.select(tiny_lm, scorer, state, ranked)
    spent = tiny_lm.usage.of("task").rollouts - before
    separate = PromptScorer(scorer.shared.__class__(tiny_lm, parity_task, "after", 6), scorer.examples[:half], 0.2)
    partial = {t: separate.score(prompt[:j] + [t] + prompt[j + 1 :]).selection_loss for t in tokens}
    best_two = sorted(tokens, key=partial.get)[:2]
    assert sorted(rescored) == sorted(best_two) and chosen.prompt_ids[j] in best_two
    assert spent == 4 * half + 2 * (n - half)

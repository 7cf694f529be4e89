"""Scoring the answer from the generation's own cache equals a fresh forward pass over the whole sequence."""

import pytest
import torch
import torch.nn.functional as F

from greater.engine.decode import Tail, greedy_decode
from tests.reference import full_logits, plain_model
from tests.tiny import tiny_language_model

TEXTS = ["a", "a much longer input here", "mid size", "Is 4 even? think"]


@pytest.fixture(scope="module")
def lm():
    return tiny_language_model(seed=0)


@pytest.fixture(scope="module")
def reference(lm):
    """lm's weights in a plain transformers model (tests.reference): none of the engine's kernels."""
    return plain_model(lm)


def full_forward_scores(reference, sequence: list[int], start: int) -> tuple[float, bool]:
    """Independent reference: one unpadded forward of the plain model, cross-entropy of sequence[start:]."""
    logits = full_logits(reference, sequence)
    rows, target = logits[start - 1 : len(sequence) - 1], torch.tensor(sequence[start:])
    return float(F.cross_entropy(rows, target)), bool((rows.argmax(-1) == target).all())


def tails_for(lm, n: int) -> list[Tail]:
    extractor = lm.encode("\nso the answer is")
    answers = [lm.encode(a) for a in ("yes", "no way", "7", "maybe not")]
    return [Tail(extractor + answers[i % len(answers)], len(extractor)) for i in range(n)]


@pytest.mark.parametrize("check_every", [1, 3, 8])
@pytest.mark.parametrize("stop_at", ["none", "early"])
@pytest.mark.parametrize("with_drafts", [False, True])
def test_tail_losses_equal_a_full_forward_pass(lm, reference, check_every, stop_at, with_drafts):
    inputs = [lm.encode(t) for t in TEXTS]
    free = greedy_decode(lm.model, inputs, 14, lm.stop_ids, lm.tokenizer.pad_token_id).tokens
    stop = set(lm.stop_ids) | ({free[1][4], free[3][1]} if stop_at == "early" else set())
    drafts = [f[:6] for f in free] if with_drafts else None
    tails = tails_for(lm, len(inputs))
    decoded = greedy_decode(
        lm.model, inputs, 14, stop, lm.tokenizer.pad_token_id, drafts, check_every=check_every, tails=tails
    )
    if stop_at == "early":
        assert any(len(t) < 14 for t in decoded.tokens)  # some rows end at a stop token, with tokens fed after it
    for x, reasoning, tail, loss, exact in zip(inputs, decoded.tokens, tails, decoded.tail_losses, decoded.tail_exact):
        sequence = x + reasoning + tail.tokens
        expected_loss, expected_exact = full_forward_scores(
            reference, sequence, len(x) + len(reasoning) + tail.score_from
        )
        assert loss == pytest.approx(expected_loss, abs=1e-4)
        assert exact == expected_exact


def test_scorer_rollouts_match_span_losses_over_the_full_sequence(lm):
    """The shared scorer's loss and accuracy, read from the cache, equal LanguageModel.span_losses'."""
    from greater.engine.frame import answer_sequences
    from greater.engine.rollouts import Scorer
    from greater.tasks.base import Example, Task

    task = Task(
        name="toy",
        train=[Example(f"Is {n} even?", "yes" if n % 2 == 0 else "no") for n in range(6)],
        test=[],
        initial_prompt="Think.",
        extractor="Answer:",
    )
    scorer = Scorer(lm, task, "after", 12)
    prompts = [lm.encode("Think."), lm.encode("Think hard.")]
    rollouts = scorer.rollouts(prompts, task.train)
    for prompt, row in zip(prompts, rollouts):
        slots = scorer.slots(task.train)
        seqs, spans = answer_sequences(lm, task, task.train, slots, prompt, [r.reasoning for r in row])
        losses, exact = lm.span_losses(seqs, spans)
        assert [r.loss for r in row] == pytest.approx(losses.tolist(), abs=1e-4)
        assert [r.correct for r in row] == exact.tolist()


def test_continuation_losses_share_each_prefix_and_equal_full_passes(lm, reference):
    prefixes = [lm.encode(t) for t in TEXTS]  # different lengths: the prefix batch is left-padded
    suffixes = [lm.encode(" think step by step"), lm.encode(" go"), lm.encode(" x y z w v")]
    rows = [(p, s) for s in suffixes for p in range(len(prefixes))]
    got = lm.continuation_losses(prefixes, rows)
    for (p, s), loss in zip(rows, got):
        expected, _ = full_forward_scores(reference, prefixes[p] + s, len(prefixes[p]))
        assert loss == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="at least one token"):
        lm.continuation_losses(prefixes, [(0, [])])


@pytest.mark.parametrize("with_drafts", [False, True])
def test_a_shared_prefix_runs_once_and_changes_nothing(lm, with_drafts):
    """Rows = 3 questions x 3 prompts that share the question and the prompt's first word: decoding them
    with the shared prefix computed once gives the tokens and tail losses of decoding each row alone."""
    questions = [lm.encode(t) for t in ("a", "a much longer question here", "Is 4 even?")]
    prompts = [lm.encode(p) for p in (" think fast", " think slow", " think again now")]
    inputs = [q + p for p in prompts for q in questions]
    shared = [len(q) + len(lm.encode(" think")) for _ in prompts for q in questions]
    tails = tails_for(lm, len(inputs))
    alone = [greedy_decode(lm.model, [x], 10, lm.stop_ids, 0, tails=[t]) for x, t in zip(inputs, tails)]
    drafts = [a.tokens[0][:4] for a in alone] if with_drafts else None
    together = greedy_decode(lm.model, inputs, 10, lm.stop_ids, 0, drafts, tails=tails, prefix_lengths=shared)
    assert together.tokens == [a.tokens[0] for a in alone]
    assert together.tail_losses == pytest.approx([a.tail_losses[0] for a in alone], abs=1e-4)
    assert together.tail_exact == [a.tail_exact[0] for a in alone]

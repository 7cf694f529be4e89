"""optimizer.ranking=exact: every proposal scored by the loss the gradient approximates (the reasoning held
fixed), checked against independent full forward passes on unpadded sequences, and a step that ranks by it."""

import pytest
import torch
import torch.nn.functional as F

from greater.engine.exact import candidate_losses
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
from tests.reference import full_logits
from tests.test_engine import scorer_for


def full_forward_loss(model, sequences, spans, starts, prompt_ids, j, token, control_weight, temperature):
    """Independent computation: token j replaced, each sequence alone through the plain reference model (no
    engine kernel, no padding, no cache, no store), all logits; answer CE at the temperature plus
    control_weight x the prompt's mean NLL."""
    total = 0.0
    prompt = prompt_ids[:j] + [token] + prompt_ids[j + 1 :]
    with torch.no_grad():
        for seq, (s, e), start in zip(sequences, spans, starts):
            changed = seq[: start + j] + [token] + seq[start + j + 1 :]
            logits = full_logits(model, changed)
            loss = F.cross_entropy(logits[s - 1 : e - 1] / temperature, torch.tensor(changed[s:e]))
            if control_weight:
                loss = loss + control_weight * F.cross_entropy(
                    logits[start - 1 : start - 1 + len(prompt)], torch.tensor(prompt)
                )
            total += float(loss)
    return total / len(sequences)


@pytest.mark.parametrize("control_weight", [0.0, 0.2])
@pytest.mark.parametrize("j", [0, 3])
def test_exact_losses_equal_full_forward_passes(tiny_lm, tiny_reference, parity_task, control_weight, j):
    scorer = scorer_for(tiny_lm, parity_task)
    prompt = tiny_lm.encode(parity_task.initial_prompt)
    current = scorer.score(prompt)
    seqs, spans = scorer.sequences(prompt, current.reasonings)
    starts = scorer.prompt_starts()
    candidates = [prompt[j], *range(10, 19)]  # the current token and more than one pass of candidates
    got = candidate_losses(tiny_lm, seqs, spans, starts, prompt, j, candidates, control_weight, 0.2)
    expected = [
        full_forward_loss(tiny_reference, seqs, spans, starts, prompt, j, c, control_weight, 0.2) for c in candidates
    ]
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_a_step_ranks_every_proposal_by_its_exact_loss_and_records_it(tiny_lm, tiny_reference, parity_task):
    config = GreaterConfig(n_steps=1, topk=5, n_groups=2, group_size=3, token_filter="ascii", ranking="exact")
    context = context_for(tiny_lm, parity_task, max_reasoning_tokens=4, seed=0)
    prompt = tiny_lm.encode(context.initial_prompt)
    result = optimize(GreaterOptimizer(config), tiny_lm, parity_task, context)
    candidates = result.history[0].details["candidates"]
    losses = [c["exact_loss"] for c in candidates]
    assert len(candidates) > 1 and losses == sorted(losses)  # ranked by it, best first
    # the losses recorded are those of independent forward passes over the step's own reasonings
    scorer = scorer_for(tiny_lm, parity_task, control_weight=config.control_weight)
    seqs, spans = scorer.sequences(prompt, scorer.score(prompt).reasonings)
    starts = scorer.prompt_starts()
    independent = {
        c["token_id"]: full_forward_loss(
            tiny_reference,
            seqs,
            spans,
            starts,
            prompt,
            0,
            c["token_id"],
            config.control_weight,
            config.answer_temperature,
        )
        for c in candidates
    }
    assert losses == pytest.approx([independent[c["token_id"]] for c in candidates], rel=1e-4, abs=1e-4)
    assert candidates[0]["token_id"] == min(independent, key=independent.get)  # the argmin ranks first

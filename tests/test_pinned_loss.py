"""Pinned numbers: the tiny model's answer loss for a fixed prompt, and the token one GReaTer step chooses.

A change to the engine's numbers (the loss, the chat slots, the extractor, the ranking) fails here even when
every property test still passes. When a change is meant, re-pin the values and say why in the commit.
"""

import pytest

from greater.engine.rollouts import Scorer
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
from tests.tiny import tiny_language_model

PROMPT = "Think step by step."
LOSS = 5.450239817301433  # mean answer cross-entropy over the six training questions, 4 reasoning tokens
STEP_TOKEN, STEP_LOSS = "m", 5.449176788330078  # position 0 after one step, and its training loss


def test_answer_loss_of_a_fixed_prompt_is_pinned(parity_task):
    lm = tiny_language_model(seed=0)
    score = Scorer(lm, parity_task, "after", 4).score_text(PROMPT, parity_task.train)
    assert score.loss == pytest.approx(LOSS, abs=1e-4)
    assert score.accuracy == 0.0


def test_one_greater_step_chooses_the_pinned_token(parity_task):
    lm = tiny_language_model(seed=0)
    optimizer = GreaterOptimizer(GreaterConfig(n_steps=1, topk=4, n_groups=2, group_size=2, min_candidates=2))
    context = context_for(lm, parity_task, prompt=PROMPT, max_reasoning_tokens=4, seed=0)
    (step,) = optimize(optimizer, lm, parity_task, context).history
    assert step.details["position"] == 0 and step.details["chosen_token"] == STEP_TOKEN
    assert step.details["train_loss"] == pytest.approx(STEP_LOSS, abs=1e-4)

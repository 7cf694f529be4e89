"""The final pick on dev, the one every method's final prompt goes through (`pick_on_dev`, called once a run
by greater.lifecycle.loop), and the dev scores it is made by, by `evaluation.dev_metric`.

`parsed` scores dev as the test split is scored (greater.evaluation.evaluator, in `evaluation.mode`): the
answer after the extractor, generated and parsed or the most likely option. The reasonings are the shared
scorer's (rolled out and counted like every method's rollouts, cached, never generated twice); only the short
answer after each is new work, counted under the task role like the rollouts. `teacher_forced` is the
scorer's own exact match of the gold tokens, what the searches rank prompts by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from greater.config import DevMetric, EvaluationConfig
from greater.engine.frame import extractor_ids
from greater.evaluation.evaluator import answers_after
from greater.evaluation.metrics import EXACT_MATCH, test_metric

if TYPE_CHECKING:
    from greater.engine.rollouts import Scorer
    from greater.tasks.base import Example


def dev_metric_name(cfg: EvaluationConfig) -> str:
    """The metric name the dev score is recorded under (greater.evaluation.metrics)."""
    return EXACT_MATCH if cfg.dev_metric == DevMetric.teacher_forced else test_metric(cfg.mode)


def dev_accuracies(
    scorer: Scorer, prompts: list[list[int]], examples: list[Example], cfg: EvaluationConfig
) -> list[float]:
    """Each prompt's accuracy on `examples` (non-empty) by `cfg.dev_metric`."""
    rows = scorer.rollouts(prompts, examples)  # [prompt][example]
    if cfg.dev_metric == DevMetric.teacher_forced:
        return [sum(r.correct for r in row) / len(row) for row in rows]
    lm, task = scorer.lm, scorer.task
    extractor, slots = extractor_ids(lm, task), scorer.slots(examples)
    heads = [
        slot.with_prompt(list(prompt)) + rollout.reasoning + extractor
        for prompt, row in zip(prompts, rows)
        for slot, rollout in zip(slots, row)
    ]
    with lm.acting_as("task"):
        _, parsed = answers_after(lm, task, heads, cfg)
    right = [task.is_correct(p, ex) for p, ex in zip(parsed, examples * len(prompts))]
    n = len(examples)
    return [sum(right[i * n : (i + 1) * n]) / n for i in range(len(prompts))]


@dataclass(frozen=True)
class Pick:
    """The final pick: which candidate, and what it scored on dev (result.json's `dev_acc` and `dev_metric`)."""

    index: int  # into the candidates
    dev_acc: float | None  # its accuracy on dev by `dev_metric`; None without a dev split
    dev_metric: str | None = None  # what dev_acc counts (greater.evaluation.metrics); None without a dev split


def pick_on_dev(
    scorer: Scorer, prompts: Sequence[Sequence[int]], dev: list[Example], evaluation: EvaluationConfig
) -> Pick:
    """The prompt (token ids) with the best dev accuracy by `evaluation.dev_metric` (by default as the test
    split is scored), the earlier one on a tie, as the paper picks; without a dev split, the first (methods
    list their candidates best first by their own score)."""
    if not prompts:
        raise ValueError("pick_on_dev needs at least one candidate prompt")
    if not dev:
        return Pick(0, None)
    scores = dev_accuracies(scorer, [list(p) for p in prompts], dev, evaluation)
    best = max(range(len(prompts)), key=lambda i: (scores[i], -i))
    return Pick(best, scores[best], dev_metric_name(evaluation))

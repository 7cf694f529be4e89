"""GReaTer's view of the shared scorer: a prompt (as token ids) scored on the training batch.

Accuracy and reasonings come from the shared `Scorer` (the same rollouts every method gets); GReaTer adds
its selection objective: mean answer cross-entropy plus control_weight times the prompt's own cross-entropy
after the question (its fluency).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from greater.engine.frame import Slot, answer_sequences
from greater.engine.rollouts import Scorer
from greater.tasks.base import Example


@dataclass
class PromptScore:
    prompt_ids: list[int]
    reasonings: list[list[int]]
    losses: list[float]  # answer cross-entropy per example
    correct: list[bool]
    fluency: list[float]  # cross-entropy of the prompt's tokens after the question, per example
    control_weight: float = 0.0

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)

    @property
    def loss(self) -> float:
        return sum(self.losses) / len(self.losses)

    @property
    def objective(self) -> float:
        return self.loss + self.control_weight * sum(self.fluency) / len(self.fluency)

    @property
    def selection_loss(self) -> float:
        """The reference's selection score, lower is better: error rate + control_weight/10 x mean prompt NLL
        (psunlpgroup/GreaTer llm_opt/gcg/greater_opt.py:414, `mist_perc + (control_weight / 10) * control_loss`)."""
        return 1.0 - self.accuracy + self.control_weight / 10 * sum(self.fluency) / len(self.fluency)

    def rank_key(self) -> tuple[float, float]:
        """Higher is better: accuracy first, then the lower objective."""
        return (self.accuracy, -self.objective)


@dataclass
class PromptScorer:
    shared: Scorer
    examples: list[Example]
    control_weight: float = 0.0
    cache: dict[tuple[int, ...], PromptScore] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lm, self.task = self.shared.lm, self.shared.task
        self.slots: list[Slot] = self.shared.slots(self.examples)

    def score(self, prompt_ids: list[int]) -> PromptScore:
        return self.score_many([prompt_ids])[0]

    def score_many(self, prompts: list[list[int]]) -> list[PromptScore]:
        """Scores of several prompts; the reasoning of all unscored ones is generated in one batched call."""
        new = list(dict.fromkeys(tuple(p) for p in prompts if tuple(p) not in self.cache))
        if new:
            fluency = self.fluency_many([list(k) for k in new])
            for key, rollouts, flu in zip(new, self.shared.rollouts([list(k) for k in new], self.examples), fluency):
                self.cache[key] = PromptScore(
                    list(key),
                    [r.reasoning for r in rollouts],
                    [r.loss for r in rollouts],
                    [r.correct for r in rollouts],
                    flu,
                    self.control_weight,
                )
        return [self.cache[tuple(p)] for p in prompts]

    def remember(self, prompt_ids: list[int], reasonings: list[list[int]]) -> None:
        self.shared.remember(prompt_ids, self.examples, reasonings)

    def fluency(self, prompt_ids: list[int]) -> list[float]:
        return self.fluency_many([prompt_ids])[0]

    def fluency_many(self, prompts: list[list[int]]) -> list[list[float]]:
        """[prompt][example] cross-entropy of the prompt's tokens after the chat before it. Each question's
        chat goes through the model once for all the prompts (its cache is shared)."""
        n = len(self.slots)
        scored = [i for i, p in enumerate(prompts) if self.control_weight and p]
        out = [[0.0] * n for _ in prompts]
        if scored:
            rows = [(e, list(prompts[i])) for i in scored for e in range(n)]
            with self.lm.acting_as("task"):
                flat = self.lm.continuation_losses([slot.before for slot in self.slots], rows)
            for k, i in enumerate(scored):
                out[i] = flat[k * n : (k + 1) * n]
        return out

    def sequences(self, prompt_ids: list[int], reasonings: list[list[int]]):
        return answer_sequences(self.lm, self.task, self.examples, self.slots, prompt_ids, reasonings)

    def prompt_starts(self) -> list[int]:
        return [len(slot.before) for slot in self.slots]

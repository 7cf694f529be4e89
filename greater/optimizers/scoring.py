"""Scoring a prompt on the training batch by re-running the reasoning (paper, section 3.5).

A prompt's score is (accuracy, objective) over the batch: accuracy counts examples whose greedy answer
after the extractor is exactly the gold answer (the argmax equals the gold token at every answer
position, which is what greedy decoding would emit); the objective is the loss the gradient follows,
mean answer cross-entropy plus control_weight times the prompt's own cross-entropy (its fluency).
Scores are cached by prompt, so no prompt is ever scored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from greater.models.language_model import LanguageModel
from greater.reasoning import Slot, answer_sequences, generate_reasoning_many, prompt_slots
from greater.tasks.base import Example, Task


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

    def rank_key(self) -> tuple[float, float]:
        """Higher is better: accuracy first, then the lower objective."""
        return (self.accuracy, -self.objective)


@dataclass
class PromptScorer:
    lm: LanguageModel
    task: Task
    examples: list[Example]
    placement: str
    max_reasoning_tokens: int
    control_weight: float = 0.0
    cache: dict[tuple[int, ...], PromptScore] = field(default_factory=dict)
    tokens_generated: int = 0

    def __post_init__(self) -> None:
        self.slots: list[Slot] = prompt_slots(self.lm, self.task, self.examples, self.placement)

    def score(self, prompt_ids: list[int]) -> PromptScore:
        return self.score_many([prompt_ids])[0]

    def score_many(self, prompts: list[list[int]]) -> list[PromptScore]:
        """Scores of several prompts; the reasoning of all uncached ones is generated in one batched call,
        which on a small model costs little more than one prompt's (generation is overhead-bound)."""
        new = list(dict.fromkeys(tuple(p) for p in prompts if tuple(p) not in self.cache))
        if new:
            reasonings = generate_reasoning_many(self.lm, self.slots, [list(p) for p in new], self.max_reasoning_tokens)
            for key, prompt_reasonings in zip(new, reasonings):
                self.tokens_generated += sum(len(r) for r in prompt_reasonings)
                self.cache[key] = self.score_with(list(key), prompt_reasonings)
        return [self.cache[tuple(p)] for p in prompts]

    def score_with(self, prompt_ids: list[int], reasonings: list[list[int]]) -> PromptScore:
        sequences, spans = self.sequences(prompt_ids, reasonings)
        losses, exact = self.lm.span_losses(sequences, spans)
        return PromptScore(
            list(prompt_ids), reasonings, losses.tolist(), exact.tolist(), self.fluency(prompt_ids), self.control_weight
        )

    def fluency(self, prompt_ids: list[int]) -> list[float]:
        if not self.control_weight or not prompt_ids:
            return [0.0] * len(self.slots)
        heads = [slot.before + list(prompt_ids) for slot in self.slots]
        spans = [(len(slot.before), len(slot.before) + len(prompt_ids)) for slot in self.slots]
        return self.lm.span_losses(heads, spans)[0].tolist()

    def sequences(self, prompt_ids: list[int], reasonings: list[list[int]]):
        return answer_sequences(self.lm, self.task, self.examples, self.slots, prompt_ids, reasonings)

    def prompt_starts(self) -> list[int]:
        return [len(slot.before) for slot in self.slots]

"""Scoring a prompt on the training batch by re-running the reasoning (paper, section 3.5).

A prompt's score is (accuracy, loss) over the batch: accuracy counts examples whose greedy answer
after the extractor is exactly the gold answer (the argmax equals the gold token at every answer
position, which is what greedy decoding would emit), the loss is the mean answer cross-entropy.
Scores are cached by prompt, so no prompt is ever scored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from greater.models.language_model import LanguageModel
from greater.reasoning import Slot, answer_sequences, generate_reasoning, prompt_slots
from greater.tasks.base import Example, Task


@dataclass
class PromptScore:
    prompt_ids: list[int]
    reasonings: list[list[int]]
    losses: list[float]  # answer cross-entropy per example
    correct: list[bool]

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)

    @property
    def loss(self) -> float:
        return sum(self.losses) / len(self.losses)

    def rank_key(self) -> tuple[float, float]:
        """Higher is better: accuracy first, then lower loss."""
        return (self.accuracy, -self.loss)


@dataclass
class PromptScorer:
    lm: LanguageModel
    task: Task
    examples: list[Example]
    placement: str
    max_reasoning_tokens: int
    cache: dict[tuple[int, ...], PromptScore] = field(default_factory=dict)
    tokens_generated: int = 0

    def __post_init__(self) -> None:
        self.slots: list[Slot] = prompt_slots(self.lm, self.task, self.examples, self.placement)

    def score(self, prompt_ids: list[int]) -> PromptScore:
        key = tuple(prompt_ids)
        if key not in self.cache:
            reasonings = generate_reasoning(self.lm, self.slots, prompt_ids, self.max_reasoning_tokens)
            self.tokens_generated += sum(len(r) for r in reasonings)
            self.cache[key] = self.score_with(prompt_ids, reasonings)
        return self.cache[key]

    def score_with(self, prompt_ids: list[int], reasonings: list[list[int]]) -> PromptScore:
        sequences, spans = self.sequences(prompt_ids, reasonings)
        losses, exact = self.lm.span_losses(sequences, spans)
        return PromptScore(list(prompt_ids), reasonings, losses.tolist(), exact.tolist())

    def sequences(self, prompt_ids: list[int], reasonings: list[list[int]]):
        return answer_sequences(self.lm, self.task, self.examples, self.slots, prompt_ids, reasonings)

    def prompt_starts(self) -> list[int]:
        return [len(slot.before) for slot in self.slots]

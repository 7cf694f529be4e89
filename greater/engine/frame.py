"""The sequence GReaTer reasons over, shared by the optimizer and the evaluator:

    [chat before the prompt | prompt | chat after the prompt] [reasoning] [extractor] [answer]

`before`/`after` come from the model's chat template around the prompt slot; the reasoning is the
model's own greedy continuation; the extractor asks for the final answer; the answer loss reads only
the answer tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from greater.tasks.base import Example, Task

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel


@dataclass(frozen=True)
class Slot:
    """Token ids of one question's chat around the prompt."""

    before: list[int]
    after: list[int]

    def with_prompt(self, prompt_ids: list[int]) -> list[int]:
        return self.before + list(prompt_ids) + self.after


def prompt_slots(lm: LanguageModel, task: Task, examples: list[Example], placement: str) -> list[Slot]:
    return [Slot(*lm.prompt_slot(task.format_question(ex), placement)) for ex in examples]


def generate_reasoning(
    lm: LanguageModel, slots: list[Slot], prompt_ids: list[int], max_new_tokens: int
) -> list[list[int]]:
    """Greedy chain of thought for every question with this prompt (batched)."""
    return lm.generate([slot.with_prompt(prompt_ids) for slot in slots], max_new_tokens)


def extractor_ids(lm: LanguageModel, task: Task) -> list[int]:
    # A new line after the reasoning, then the extractor sentence that asks for the final answer.
    return lm.encode("\n" + task.extractor)


def answer_sequences(
    lm: LanguageModel,
    task: Task,
    examples: list[Example],
    slots: list[Slot],
    prompt_ids: list[int],
    reasonings: list[list[int]],
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Full sequences with the gold answer appended, and the (start, end) span of the answer tokens."""
    extractor = extractor_ids(lm, task)
    sequences, spans = [], []
    for example, slot, reasoning in zip(examples, slots, reasonings):
        head = slot.with_prompt(prompt_ids) + list(reasoning) + extractor
        target = lm.encode(task.target_text(example))
        sequences.append(head + target)
        spans.append((len(head), len(head) + len(target)))
    return sequences, spans

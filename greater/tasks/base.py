"""The task contract: examples, splits and how an answer is judged.

Everything the engine and the evaluator need from a task lives on `Task`; loaders build one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from greater.config import DEFAULT_EXTRACTOR, DEFAULT_INITIAL_PROMPT


@dataclass(frozen=True)
class Example:
    """One question with its gold answer in canonical form (e.g. "(A)", "Yes", "42")."""

    question: str
    answer: str
    id: str = ""  # where it came from, e.g. "causal_judgement.json#17", for reports
    # the file and line (or hub row) it was read from, e.g. "data.csv line 7"; "" when generated
    where: str = field(default="", compare=False)


@dataclass
class Task:
    """A benchmark task ready to optimize and evaluate on.

    `parse` maps free model text to a canonical answer (None when nothing parses);
    `target_text` is the exact text the answer loss reads after the extractor.
    """

    name: str
    train: list[Example]
    test: list[Example]
    dev: list[Example] = field(default_factory=list)
    answer_type: str = "text"
    initial_prompt: str = DEFAULT_INITIAL_PROMPT
    extractor: str = DEFAULT_EXTRACTOR
    question_template: str = "{question}"
    options: list[str] | None = None  # closed answer set, for log-likelihood evaluation
    parse: Callable[[str], str | None] = lambda text: text.strip() or None
    normalize: Callable[[str], str] = lambda text: text.strip()
    split_overlap: int = 0  # test questions also in train or dev, as the test split is evaluated
    dropped_overlap: int = 0  # test questions task.dedupe dropped for that

    def format_question(self, example: Example) -> str:
        return self.question_template.format(question=example.question)

    def target_text(self, example: Example) -> str:
        # A leading space: the answer follows the extractor as a new word.
        return " " + example.answer

    def is_correct(self, prediction: str | None, example: Example) -> bool:
        return prediction is not None and self.normalize(prediction) == self.normalize(example.answer)

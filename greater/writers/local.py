"""Writers over our own model code: the task model itself, or a second model loaded from a model config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from greater.writers.base import WRITER_ROLE

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel


class TaskModelWriter:
    """The model being optimized writes for itself, counted under "optimizer" (every method's behaviour
    before writers existed, so its numbers are unchanged)."""

    kind, role = "task_model", "optimizer"

    def __init__(self, lm: LanguageModel) -> None:
        self.lm, self.name = lm, lm.name

    def complete(self, messages, max_new_tokens, temperature=0.0, n=1, seed=None):
        with self.lm.acting_as(self.role):
            return self.lm.complete(messages, max_new_tokens, temperature=temperature, n=n, seed=seed)


class ModelWriter:
    """Another of our models writes, counted under "writer". Its model is built counting into the run's
    ledger (the task model's: `LanguageModel.from_config(..., usage=lm.usage)`), so the budget and the
    checkpoint see its work (the writer model does nothing else)."""

    kind, role = "model", WRITER_ROLE

    def __init__(self, lm: LanguageModel) -> None:
        self.lm, self.name = lm, lm.name

    def complete(self, messages, max_new_tokens, temperature=0.0, n=1, seed=None):
        with self.lm.acting_as(self.role):
            return self.lm.complete(messages, max_new_tokens, temperature=temperature, n=n, seed=seed)

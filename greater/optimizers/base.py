"""What every optimizer returns and reports, and the verb it implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from greater.callbacks.base import Callback
    from greater.models.language_model import LanguageModel
    from greater.tasks.base import Example, Task


@dataclass
class CandidateScore:
    token_id: int
    token: str
    gradient_score: float  # E[c] . dL/de at the position; lower is better
    train_acc: float | None = None  # filled for the candidates re-scored by reasoning
    train_loss: float | None = None


@dataclass
class StepRecord:
    """One optimization step, as written to history.jsonl (one line a step)."""

    step: int
    position: int
    prompt: str  # the prompt chosen at this step (the one train_loss and train_acc score)
    prompt_ids: list[int]
    chosen_token: str
    candidates: list[CandidateScore]
    train_loss: float
    train_acc: float
    best_prompt: str
    best_train_acc: float
    best_train_loss: float  # the selection objective: answer loss + control_weight x the prompt's fluency
    seconds: dict[str, float] = field(default_factory=dict)  # per stage: reasoning, proposal, gradient, selection

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        fields = dict(data)
        fields["candidates"] = [CandidateScore(**c) for c in data.get("candidates", [])]
        return cls(**fields)


@dataclass
class OptimizationResult:
    initial_prompt: str
    final_prompt: str
    initial_train_acc: float | None = None
    final_train_acc: float | None = None
    initial_train_loss: float | None = None
    final_train_loss: float | None = None
    final_dev_acc: float | None = None  # set when the final prompt was chosen on a dev split
    history: list[StepRecord] = field(default_factory=list)
    seconds: float = 0.0


class Optimizer(Protocol):
    """One verb: improve `task`'s prompt for `lm` on its training examples."""

    def optimize(
        self,
        lm: LanguageModel,
        task: Task,
        train: list[Example],
        callbacks: list[Callback] | None = None,
    ) -> OptimizationResult: ...

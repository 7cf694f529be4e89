"""Everything the GReaTer search needs to continue after a stop, as plain JSON-ready values (the step
history is the loop's, greater/lifecycle/loop.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SearchState:
    prompt_ids: list[int]
    initial_length: int
    position: int = 0
    step: int = 0  # steps completed
    steps_since_best: int = 0
    # The best prompts seen, as [accuracy, objective, prompt ids], best first.
    leaderboard: list[list[Any]] = field(default_factory=list)
    rng_state: list[Any] | None = None
    # Reasoning already generated for the current prompt: a resumed run need not regenerate it.
    current_reasonings: list[list[int]] | None = None

    def offer(self, accuracy: float, loss: float, prompt_ids: list[int], keep: int = 10, by: str = "accuracy") -> bool:
        """Add a scored prompt to the leaderboard; True when it is the new best. Rows are ordered by accuracy,
        then loss (`by="accuracy"`), or by loss alone (`by="loss"`, when the loss already counts errors)."""
        if any(ids == list(prompt_ids) for _, _, ids in self.leaderboard):
            return False
        self.leaderboard.append([accuracy, loss, list(prompt_ids)])
        self.leaderboard.sort(key=(lambda row: row[1]) if by == "loss" else (lambda row: (-row[0], row[1])))
        del self.leaderboard[keep:]
        return self.leaderboard[0][2] == list(prompt_ids)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchState:
        """The state in a checkpoint's payload (which also holds the loop's history)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

"""What an optimizer reports at each step, shared by every method and read by every callback.

The record types live apart from both the optimizers (which write them) and the callbacks (which read them),
so neither package imports the other. Common fields are what the console, plots, W&B and tables understand
for any method; `details` holds the method's own payload (GReaTer's position and ranked candidates, APO's
textual gradients, OPRO's meta-prompt scores, ...), written to history.jsonl as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from greater.evaluation.metrics import EXACT_MATCH


@dataclass
class StepRecord:
    """One optimization step, as one line of history.jsonl."""

    step: int  # counted from 1
    method: str  # the optimizer's name: "greater", "ape", ...
    prompt: str  # the prompt this step chose (or the best of its beam)
    train_score: float | None  # accuracy of `prompt` on the training batch the step used
    best_prompt: str  # the best prompt so far, by the method's own criterion
    best_score: float | None
    dev_score: float | None = None  # when the method scored `prompt` on dev
    seconds: float = 0.0  # wall time of the step
    stage_seconds: dict[str, float] = field(default_factory=dict)  # e.g. reasoning, gradient, selection
    model_calls: dict[str, int] = field(default_factory=dict)  # counter deltas over the step, by role
    details: dict[str, Any] = field(default_factory=dict)
    metric: str = EXACT_MATCH  # what the three scores count: teacher-forced exact match of the gold answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def summary(self) -> str:
        """A short method-specific note for the console line (the details' `summary` entry, if any)."""
        return str(self.details.get("summary", ""))


@dataclass(frozen=True)
class RunInfo:
    """What a run is, given to `Callback.on_run_start` before its first step."""

    config: dict[str, Any]  # the resolved config, as plain data
    run_dir: str
    model: str
    task: str
    method: str  # the optimizer's name
    group: str | None = None  # the W&B group: logger.wandb_group, else the sweep's
    start_step: int = 0  # > 0 when resuming: the first step this process runs

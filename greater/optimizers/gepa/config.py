"""GEPA's settings (torch-free: composing a config imports only this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.config import hyperparameter
from greater.optimizers.writing import WritingConfig


@dataclass
class GEPAConfig(WritingConfig):
    implementation: ClassVar[str] = "greater.optimizers.gepa.optimizer:GEPAOptimizer"

    name: str = "gepa"
    # GEPA's budget: (candidate, example) evaluations, the seed's full pass on the selection split included
    max_metric_calls: int = hyperparameter(300, min=1)
    minibatch_size: int = hyperparameter(3, min=1)  # train examples each reflection reads and acceptance scores
    # parents: "pareto" (sampled by the selection-split examples they win), current_best, epsilon_greedy
    candidate_selection: str = hyperparameter("pareto")
    use_merge: bool = hyperparameter(False)  # GEPA+Merge: cross two Pareto candidates (resume restarts its schedule)
    max_merge_invocations: int = hyperparameter(5, min=0)
    skip_perfect_score: bool = hyperparameter(True)  # no reflection on a minibatch already all right
    reflection_tokens: int = hyperparameter(256, min=1)  # the writer's reply (the new instruction in ``` blocks)
    reflection_temperature: float = hyperparameter(0.7, min=0)
    max_words: int = 80  # a longer proposal fails the shared validator (scores 0)

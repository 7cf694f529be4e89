"""GReaTer's hyperparameters: one dataclass, the only place of their defaults (conf/optimizer/greater.yaml
names it as its schema and restates nothing). Torch-free, so composing a config never loads torch."""

from __future__ import annotations

from dataclasses import dataclass

from greater.config import Choice
from greater.optimizers.base import OptimizerConfig


class Selection(Choice):
    reference = "reference"  # the authors' forced move among the top n_rescore by gradient
    keep_current = "keep_current"  # ours: the current token always competes


class TokenFilter(Choice):
    reference = "reference"  # letters and spaces, "." and "," (the reference's aggressive=False test)
    ascii = "ascii"  # any printable ASCII


class Ranking(Choice):
    gradient = "gradient"
    random = "random"  # ablation control: proposals ranked at random


@dataclass
class GreaterConfig(OptimizerConfig):
    name: str = "greater"
    n_steps: int = 125  # optimization steps (one position each)
    topk: int = 30  # next-token candidates per example before intersection (experiment=paper_*: 40)
    topk_growth: int = 2  # k grows by this until `min_candidates` survive the intersection
    min_candidates: int = 6
    max_topk: int = 200
    group_size: int = 5  # examples per intersection group
    n_groups: int = 6  # q random groups; candidates = union over groups of the intersection within each
    n_rescore: int = 3  # best-ranked candidates re-scored by regenerating the reasoning (GO:227)
    control_weight: float = 0.2  # weight of the fluency term (the prompt's own cross-entropy)
    patience: int = 0  # stop after this many steps without a better prompt; 0 never stops early
    period_early_accept: bool = True  # a period candidate at a late position is taken at once
    placeholder: str = "_"  # its last token is appended when the prompt grows past its end
    # reference: the top n_rescore by gradient, the current token included only if it ranks there, scored by
    # error rate + control_weight/10 x prompt NLL; the best of them replaces the current token (a forced
    # move). keep_current: the current token always competes; ranked by accuracy, then CE + control_weight x NLL.
    selection: Selection = Selection.reference
    answer_temperature: float = 0.2  # the answer logits are divided by this in the gradient's loss (GO:103)
    token_filter: TokenFilter = TokenFilter.reference
    final_pool: int = 10  # final prompt: the best this many by train score, picked by dev accuracy
    # Controls for the ablation (docs/results/ablation.md), not for use: rank the proposals at random
    # instead of by gradient, or take the gradient with the answer right after the question (no reasoning).
    ranking: Ranking = Ranking.gradient
    gradient_over_reasoning: bool = True
    # Approximate, off by default (not in the reference): re-score the candidates on the first half of the
    # batch, keep the better half of them (at least one), and finish only those on the whole batch.
    selection_halving: bool = False

    def __post_init__(self) -> None:
        if self.n_steps < 0 or min(self.topk, self.n_rescore, self.group_size, self.n_groups, self.final_pool) < 1:
            raise ValueError(
                "optimizer: n_steps >= 0 and topk, n_rescore, group_size, n_groups, final_pool >= 1 are required"
            )
        if self.answer_temperature <= 0:
            raise ValueError(f"optimizer.answer_temperature={self.answer_temperature}: use a value > 0 (0.2 reference)")

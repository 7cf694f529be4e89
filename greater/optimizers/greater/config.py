"""GReaTer's hyperparameters: one dataclass, the only place of their defaults, bounds and resume policies
(conf/optimizer/greater.yaml names it as its schema and restates nothing; greater/lifecycle/validate.py checks the
bounds). Torch-free, so composing a config never loads torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.config import Choice, hyperparameter
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
    exact = "exact"  # by the loss the gradient approximates, computed exactly (reasoning held fixed)


@dataclass
class GreaterConfig(OptimizerConfig):
    implementation: ClassVar[str] = "greater.optimizers.greater.optimizer:GreaterOptimizer"

    name: str = "greater"
    n_steps: int = hyperparameter(125, min=0)  # optimization steps (one position each)
    # next-token candidates per example before intersection (experiment=paper_*: model.paper_topk)
    topk: int = hyperparameter(30, min=1)
    topk_growth: int = hyperparameter(2, min=1)  # k grows by this until `min_candidates` survive the intersection
    min_candidates: int = hyperparameter(6, min=1)
    max_topk: int = hyperparameter(200, min=1)
    group_size: int = hyperparameter(5, min=1)  # examples per intersection group
    # q random groups; candidates = union over groups of the intersection within each
    n_groups: int = hyperparameter(6, min=1)
    # best-ranked candidates re-scored by regenerating the reasoning (GO:227)
    n_rescore: int = hyperparameter(3, min=1)
    control_weight: float = hyperparameter(0.2, min=0)  # weight of the fluency term (the prompt's own cross-entropy)
    # stop after this many steps without a better prompt; 0 never stops early (the reference's restart is not
    # followed: docs/fidelity.md, "Restart")
    patience: int = hyperparameter(0, min=0)
    period_early_accept: bool = hyperparameter(True)  # a period candidate at a late position is taken at once
    placeholder: str = hyperparameter("_")  # its last token is appended when the prompt grows past its end
    # reference: the top n_rescore by gradient, the current token included only if it ranks there, scored by
    # error rate + control_weight/10 x prompt NLL; the best of them replaces the current token (a forced
    # move). keep_current: the current token always competes; ranked by accuracy, then CE + control_weight x NLL.
    selection: Selection = hyperparameter(Selection.reference)
    # the answer logits are divided by this in the gradient's loss (GO:103)
    answer_temperature: float = hyperparameter(0.2, above=0, note="0.2 is the reference's, 1.0 the plain CE")
    token_filter: TokenFilter = hyperparameter(TokenFilter.reference)
    # final prompt: the best this many by train score, picked by dev accuracy
    final_pool: int = hyperparameter(10, min=1)
    # Controls for ablations, not for use: rank the proposals at random or by their exact loss (a forward
    # pass per proposal, the reasoning held fixed) instead of by gradient, or take the gradient with the
    # answer right after the question (no reasoning).
    ranking: Ranking = hyperparameter(Ranking.gradient)
    gradient_over_reasoning: bool = hyperparameter(True)
    # Approximate, off by default (not in the reference): re-score the candidates on the first half of the
    # batch, keep the better half of them (at least one), and finish only those on the whole batch.
    selection_halving: bool = hyperparameter(False)

"""GReaTer's selection rules (config.selection): which re-scored candidate a step keeps, and what enters
the pool of best prompts the final pick chooses from. One class per rule; the optimizer asks the rule and
never branches on the setting itself.

reference (GO:355-427, AM:1414-1419): the top n_rescore by gradient are re-scored, the current token among
  them only if it ranks there; the lowest error rate + control_weight/10 x prompt NLL wins (a later candidate
  wins a tie, GO:418) and replaces the current token even when it is worse (GO:427, a forced move); the pool
  holds only prompts a step chose, ranked by that same selection loss.
keep_current (ours): the current token always competes (its score is cached); ranked by accuracy, then
  answer CE + control_weight x NLL, so a step never makes the prompt worse on the training batch; every
  re-scored prompt, and the start, may enter the pool.
"""

from __future__ import annotations

from typing import Protocol

from greater.optimizers.greater.config import Selection
from greater.optimizers.greater.objective import PromptScore, PromptScorer
from greater.optimizers.greater.state import SearchState


class SelectionStrategy(Protocol):
    # Whether the current token is re-scored only when it ranks among the top n_rescore (else it is skipped
    # there, since it competes anyway).
    current_ranks_with_candidates: bool

    def seed_pool(self, state: SearchState, initial: PromptScore, keep: int) -> None:
        """Before the first step: what the starting prompt adds to the pool."""

    def pick(self, scorer: PromptScorer, prompt: list[int], j: int, rescored: dict[int, PromptScore]) -> PromptScore:
        """The step's choice among the re-scored candidates (token -> score, in rank order); may add the
        current token's (prompt[j]) score to `rescored` when it competes."""
        ...

    def offer(self, state: SearchState, chosen: PromptScore, rescored: dict[int, PromptScore], keep: int) -> bool:
        """Put the step's prompts into the pool; True when one became the new best."""
        ...

    def halving_order(self, tokens: list[int], partial: dict[int, PromptScore]) -> list[int]:
        """`tokens` best first by their scores on the first half of the batch."""
        ...


class ReferenceSelection:
    current_ranks_with_candidates = True

    def seed_pool(self, state: SearchState, initial: PromptScore, keep: int) -> None:
        pass  # the reference's pool holds only prompts a step chose (AM:1414-1419)

    def pick(self, scorer: PromptScorer, prompt: list[int], j: int, rescored: dict[int, PromptScore]) -> PromptScore:
        return min(reversed(list(rescored.values())), key=lambda score: score.selection_loss)  # ties: the later

    def offer(self, state: SearchState, chosen: PromptScore, rescored: dict[int, PromptScore], keep: int) -> bool:
        return state.offer(chosen.accuracy, chosen.selection_loss, chosen.prompt_ids, keep, by="loss")

    def halving_order(self, tokens: list[int], partial: dict[int, PromptScore]) -> list[int]:
        return sorted(tokens, key=lambda t: partial[t].selection_loss)


class KeepCurrentSelection:
    current_ranks_with_candidates = False

    def seed_pool(self, state: SearchState, initial: PromptScore, keep: int) -> None:
        state.offer(initial.accuracy, initial.objective, initial.prompt_ids, keep)

    def pick(self, scorer: PromptScorer, prompt: list[int], j: int, rescored: dict[int, PromptScore]) -> PromptScore:
        rescored[prompt[j]] = scorer.score(prompt)
        return max(rescored.values(), key=PromptScore.rank_key)

    def offer(self, state: SearchState, chosen: PromptScore, rescored: dict[int, PromptScore], keep: int) -> bool:
        improved = state.offer(chosen.accuracy, chosen.objective, chosen.prompt_ids, keep)
        for score in rescored.values():
            improved |= state.offer(score.accuracy, score.objective, score.prompt_ids, keep)
        return improved

    def halving_order(self, tokens: list[int], partial: dict[int, PromptScore]) -> list[int]:
        return sorted(tokens, key=lambda t: partial[t].rank_key(), reverse=True)


STRATEGIES: dict[Selection, SelectionStrategy] = {
    Selection.reference: ReferenceSelection(),
    Selection.keep_current: KeepCurrentSelection(),
}


def selection_strategy(selection: Selection | str) -> SelectionStrategy:
    try:
        return STRATEGIES[Selection(selection)]
    except ValueError:
        raise ValueError(
            f"optimizer.selection={selection}: use one of {', '.join(s.value for s in Selection)}"
        ) from None

"""The GReaTer search (Das et al., ICLR 2025, section 3): one prompt position a step, in the shared step
loop (greater/lifecycle/loop.py: budget, timing, records, checkpoints, the final pick on dev).

Each step: reason with the current prompt; take the answer loss's gradient at position j together with
the model's own next-token proposals there; rank the proposals by gradient; re-score the best few by
regenerating the reasoning; keep the best (by config.selection's strategy, selection.py); move to the next
position (growing or wrapping the prompt).

By default every choice follows the authors' code (psunlpgroup/GreaTer; GO = llm_opt/gcg/greater_opt.py,
AM = llm_opt/base/attack_manager.py); our own variants are named options. docs/fidelity.md lists
each choice, its reference line and what still differs.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from greater.engine.exact import candidate_losses
from greater.engine.gradient import position_gradient, rank_by_gradient
from greater.lifecycle.checkpoint import rng_from_json, rng_to_json
from greater.optimizers.base import OptimizationContext, OptimizationResult
from greater.optimizers.greater.candidates import (
    allowed_token_mask,
    ban_previous_token,
    propose_candidates,
    sample_groups,
)
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.objective import PromptScore, PromptScorer
from greater.optimizers.greater.selection import SelectionStrategy, selection_strategy
from greater.optimizers.greater.state import SearchState
from greater.optimizers.loop import Ending, SteppedOptimizer
from greater.records import StepRecord
from greater.tasks.base import Task

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel

log = logging.getLogger(__name__)


@dataclass
class GreaterRun:
    """One run's working set: the model, the objective on the training batch, the search state, the
    vocabulary mask and the random stream of the candidate groups."""

    lm: LanguageModel
    scorer: PromptScorer
    search: SearchState
    allowed: torch.Tensor
    rng: random.Random
    initial: PromptScore | None = None  # the starting prompt's score (for the pool and the result)


class GreaterOptimizer(SteppedOptimizer[GreaterRun, tuple[int, ...]]):
    name = "greater"
    config_class = GreaterConfig
    config: GreaterConfig

    def __init__(self, config: GreaterConfig | None = None) -> None:
        super().__init__(config or GreaterConfig())
        self.seed = 0
        self.selection: SelectionStrategy = selection_strategy(self.config.selection)

    # ---- the run's state ------------------------------------------------------------------------
    def init_state(self, lm: LanguageModel, task: Task, ctx: OptimizationContext) -> GreaterRun:
        ids = lm.encode(ctx.initial_prompt)
        return self._start(lm, ctx, SearchState(prompt_ids=list(ids), initial_length=len(ids)), None)

    def state_from_json(self, data: dict[str, Any], lm: LanguageModel, task: Task, ctx: OptimizationContext):
        return self._start(lm, ctx, SearchState.from_dict(data), data.get("rng_state"))

    def _start(self, lm, ctx: OptimizationContext, search: SearchState, rng_state: list[Any] | None) -> GreaterRun:
        scorer = PromptScorer(ctx.scorer, ctx.train, self.config.control_weight)
        rng = random.Random(ctx.seed) if rng_state is None else rng_from_json(rng_state)
        torch.manual_seed(ctx.seed)
        self.seed = ctx.seed
        if search.current_reasonings is not None:
            scorer.remember(search.prompt_ids, search.current_reasonings)
        run = GreaterRun(lm, scorer, search, allowed_token_mask(lm.tokenizer, self.config.token_filter), rng)
        run.initial = scorer.score(lm.encode(ctx.initial_prompt))
        self.selection.seed_pool(search, run.initial, self._keep)
        return run

    def state_to_json(self, run: GreaterRun) -> dict[str, Any]:
        run.search.rng_state = rng_to_json(run.rng)
        # The next step reasons with the current prompt first: keep its reasonings when they are already known,
        # so a resumed run need not regenerate them.
        known = run.scorer.shared.reasonings(run.search.prompt_ids, run.scorer.examples)
        run.search.current_reasonings = [r for _, r in known] if len(known) == len(run.scorer.examples) else None
        return run.search.to_dict()

    def more_steps(self, run: GreaterRun, done: int) -> bool:
        patience = self.config.patience
        return done < self.config.n_steps and not (patience > 0 and run.search.steps_since_best >= patience)

    # ---- one step -----------------------------------------------------------------------------
    def step(self, run: GreaterRun) -> StepRecord:
        lm, scorer, state, rng, stages = run.lm, run.scorer, run.search, run.rng, self.stages
        prompt, j = state.prompt_ids, state.position
        with stages("reasoning"):
            current = scorer.score(prompt)
            # Control (gradient_over_reasoning=False): the answer right after the question, no reasoning.
            reasonings = current.reasonings if self.config.gradient_over_reasoning else [[] for _ in current.reasonings]
            sequences, spans = scorer.sequences(prompt, reasonings)
        with stages("gradient"):
            grad = position_gradient(
                lm,
                sequences,
                spans,
                scorer.prompt_starts(),
                prompt,
                j,
                self.config.control_weight,
                self.config.answer_temperature,
            )
        with stages("proposal"):
            groups = sample_groups(len(sequences), self.config.group_size, self.config.n_groups, rng)
            candidates, _ = propose_candidates(
                grad.next_token_logits,
                groups,
                self._allowed_at(run.allowed, prompt, j),
                self.config.topk,
                self.config.topk_growth,
                self.config.min_candidates,
                self.config.max_topk,
            )
            if prompt[j] not in candidates:
                candidates.append(prompt[j])  # the current token is always ranked too (GO:337-340)
            ranked = self._rank(lm, grad.grads, candidates, state.step)
        exact: dict[int, float] = {}
        if self.config.ranking == "exact":  # control: every proposal by the loss the gradient approximates
            with stages("exact"):
                losses = candidate_losses(
                    lm,
                    sequences,
                    spans,
                    scorer.prompt_starts(),
                    prompt,
                    j,
                    candidates,
                    self.config.control_weight,
                    self.config.answer_temperature,
                )
                exact = dict(zip(candidates, losses))
            ranked = sorted(ranked, key=lambda pair: exact[pair[0]])
        with stages("selection"):
            chosen, rescored = self.select(lm, scorer, state, ranked)
        state.prompt_ids = _replace(prompt, j, chosen.prompt_ids[j])
        improved = self.selection.offer(state, chosen, rescored, self._keep)
        state.steps_since_best = 0 if improved else state.steps_since_best + 1
        state.step += 1
        record = self._record(lm, state, j, chosen, ranked, rescored, exact)
        state.prompt_ids, state.position = self.advance(lm, state.prompt_ids, j)
        return record

    def _allowed_at(self, allowed: torch.Tensor, prompt: list[int], j: int) -> torch.Tensor:
        # The reference bans the token before the position (GO:279); the ascii variant does not.
        return ban_previous_token(allowed, prompt, j) if self.config.token_filter == "reference" else allowed

    def _rank(self, lm: LanguageModel, grads: torch.Tensor, candidates: list[int], step: int):
        ranked = rank_by_gradient(lm, grads, candidates)
        if self.config.ranking == "random":  # control: the same proposals in an order that ignores the gradient
            random.Random(f"{self.seed}-{step}").shuffle(ranked)
        return ranked

    @property
    def _keep(self) -> int:
        return max(10, self.config.final_pool)

    def select(
        self, lm: LanguageModel, scorer: PromptScorer, state: SearchState, ranked: list[tuple[int, float]]
    ) -> tuple[PromptScore, dict[int, PromptScore]]:
        """Re-score the best-ranked candidates by reasoning with them and keep the best.

        selection=reference (GO:355-427): the top n_rescore by gradient, the current token among them only if
        it ranks there; the lowest error rate + control_weight/10 x NLL wins (a later candidate wins a tie,
        GO:418), and it replaces the current token even when it is worse (GO:427).
        selection=keep_current: the current token competes too (its score is cached), ranked by accuracy, then
        the objective, so a step never makes the prompt worse on the training batch.
        Either way a candidate with a period at a late position is taken at once (GO:422).
        """
        prompt, j = state.prompt_ids, state.position
        tokens = self._tokens_to_rescore(lm, prompt, j, state.initial_length, ranked)
        if self.config.selection_halving:
            tokens = self._halve(scorer, prompt, j, tokens)
        # All trials reason in one batched generation; the result is the same as scoring them one by one.
        scores = scorer.score_many([_replace(prompt, j, token) for token in tokens])
        rescored = dict(zip(tokens, scores))
        if tokens and self._accept_at_once(lm, tokens[-1], j, state.initial_length):
            return rescored[tokens[-1]], rescored
        return self.selection.pick(scorer, prompt, j, rescored), rescored

    def _halve(self, scorer: PromptScorer, prompt: list[int], j: int, tokens: list[int]) -> list[int]:
        """The better half of `tokens` (at least one, in their order) by their score on the first half of the
        batch; their rollouts there are cached, so finishing the survivors costs only the second half."""
        if len(tokens) < 2 or len(scorer.examples) < 2:
            return tokens
        half = PromptScorer(scorer.shared, scorer.examples[: len(scorer.examples) // 2], scorer.control_weight)
        partial = dict(zip(tokens, half.score_many([_replace(prompt, j, t) for t in tokens])))
        order = self.selection.halving_order(tokens, partial)
        survivors = set(order[: (len(tokens) + 1) // 2])
        return [t for t in tokens if t in survivors]

    def _tokens_to_rescore(
        self, lm: LanguageModel, prompt: list[int], j: int, initial_length: int, ranked: list[tuple[int, float]]
    ) -> list[int]:
        """The best-ranked tokens, up to `n_rescore` (with reference selection the current token counts
        among them; otherwise it is skipped, since it competes anyway); the list stops early at one that
        would be accepted at once (a period late in the prompt), since nothing after it is looked at."""
        tokens: list[int] = []
        for token, _ in ranked:
            if token == prompt[j] and not self.selection.current_ranks_with_candidates:
                continue
            if token != prompt[j] and not _round_trips(lm, _replace(prompt, j, token)):
                continue  # the text of this prompt would tokenize differently: not a prompt a user can copy
            tokens.append(token)
            if self._accept_at_once(lm, token, j, initial_length) or len(tokens) == self.config.n_rescore:
                break
        return tokens

    def _accept_at_once(self, lm: LanguageModel, token: int, j: int, initial_length: int) -> bool:
        return self.config.period_early_accept and "." in lm.decode([token]) and j >= initial_length / 2

    def advance(self, lm: LanguageModel, prompt: list[int], j: int) -> tuple[list[int], int]:
        """Next position; past the end, wrap to the start if the last token closes a sentence (holds a
        period), else grow the prompt by a placeholder token to optimize next."""
        if j + 1 < len(prompt):
            return prompt, j + 1
        if "." in lm.decode(prompt[-1:]):
            return prompt, 0
        return prompt + lm.encode(self.config.placeholder)[-1:], j + 1

    def _record(self, lm, state, j, chosen, ranked, rescored, exact) -> StepRecord:
        candidates = [
            {
                "token_id": t,
                "token": lm.decode([t]),
                "gradient_score": g,
                "train_acc": rescored[t].accuracy if t in rescored else None,
                "train_loss": rescored[t].loss if t in rescored else None,
                **({"exact_loss": exact[t]} if exact else {}),  # ranking=exact: what it ranked by
            }
            for t, g in ranked
        ]
        best_acc, best_loss, best_ids = state.leaderboard[0]
        chosen_token = lm.decode([state.prompt_ids[j]])
        return StepRecord(
            step=state.step,
            method=self.name,
            prompt=lm.decode(state.prompt_ids),
            train_score=chosen.accuracy,
            best_prompt=lm.decode(best_ids),
            best_score=best_acc,
            details={
                "summary": f"pos {j:>2} token {chosen_token!r} loss {chosen.loss:.3f}",
                "position": j,
                "prompt_ids": list(state.prompt_ids),
                "chosen_token": chosen_token,
                "train_loss": chosen.loss,
                "best_train_loss": best_loss,
                "candidates": candidates,
            },
        )

    # ---- the final prompt -----------------------------------------------------------------------
    def final_candidates(self, run: GreaterRun) -> list[tuple[int, ...]]:
        assert run.initial is not None  # scored when the run started
        return self.final_pool(run.lm, run.search, run.initial.prompt_ids)

    def final_pool(self, lm: LanguageModel, state: SearchState, initial_ids: list[int]) -> list[tuple[int, ...]]:
        """The best `final_pool` prompts by training score, best first, placeholders removed (the reference
        strips a trailing "_", process_for_dev.py); the loop picks the one with the best dev accuracy (ties:
        the better train score), as the paper does, or without a dev split the first."""
        pool = [self.strip_placeholder(lm, ids) for _, _, ids in state.leaderboard[: self.config.final_pool]]
        return [ids for ids in dict.fromkeys(tuple(ids) for ids in pool) if ids] or [tuple(initial_ids)]

    def prompt_ids(self, run: GreaterRun, candidate: tuple[int, ...]) -> list[int]:
        return list(candidate)

    def result(self, run: GreaterRun, final_ids: tuple[int, ...], ending: Ending) -> OptimizationResult:
        lm, initial = run.lm, run.initial
        assert initial is not None
        final = run.scorer.score(list(final_ids))
        return OptimizationResult(
            method=self.name,
            initial_prompt=lm.decode(initial.prompt_ids),
            final_prompt=lm.decode(list(final_ids)),
            initial_train_acc=initial.accuracy,
            final_train_acc=final.accuracy,
            history=ending.history,
            seconds=ending.seconds,
            stopped_because=ending.stopped_because,
            extra={"initial_train_loss": initial.loss, "final_train_loss": final.loss},
        )

    def strip_placeholder(self, lm: LanguageModel, ids) -> list[int]:
        """The prompt without the placeholder token: it marks a position still to fill, not a word."""
        placeholder = lm.encode(self.config.placeholder)[-1]
        return [token for token in ids if token != placeholder]


def _replace(prompt: list[int], j: int, token: int) -> list[int]:
    return prompt[:j] + [token] + prompt[j + 1 :]


def _round_trips(lm: LanguageModel, prompt_ids: list[int]) -> bool:
    return lm.encode(lm.decode(prompt_ids)) == list(prompt_ids)

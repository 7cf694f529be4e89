"""The GReaTer search loop (Das et al., ICLR 2025, section 3): one prompt position a step.

Each step: reason with the current prompt; take the answer loss's gradient at position j together with
the model's own next-token proposals there; rank the proposals by gradient; re-score the best few by
regenerating the reasoning; keep the best; move to the next position (growing or wrapping the prompt).
The engine reports through callbacks and knows nothing of logging.

By default every choice follows the authors' code (psunlpgroup/GreaTer; GO = llm_opt/gcg/greater_opt.py,
AM = llm_opt/base/attack_manager.py); our own variants are named options. docs/fidelity.md lists
each choice, its reference line and what still differs.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING

import torch

from greater.engine.gradient import position_gradient, rank_by_gradient
from greater.optimizers.base import OptimizationContext, OptimizationResult, Optimizer
from greater.optimizers.greater.candidates import (
    allowed_token_mask,
    ban_previous_token,
    propose_candidates,
    sample_groups,
)
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.objective import PromptScore, PromptScorer
from greater.optimizers.greater.state import SearchState
from greater.optimizers.registry import register_optimizer
from greater.records import StepRecord
from greater.run.checkpoint import rng_from_json, rng_to_json
from greater.tasks.base import Task

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel

log = logging.getLogger(__name__)


@register_optimizer
class GreaterOptimizer(Optimizer):
    name = "greater"
    config_class = GreaterConfig
    config: GreaterConfig

    def __init__(self, config: GreaterConfig | None = None) -> None:
        super().__init__(config or GreaterConfig())
        self.seed = 0

    @property
    def reference(self) -> bool:
        return self.config.selection == "reference"

    # ---- the loop -----------------------------------------------------------------------------
    def optimize(self, lm: LanguageModel, task: Task, context: OptimizationContext) -> OptimizationResult:
        started = time.perf_counter()
        hooks = context.callbacks
        scorer = PromptScorer(context.scorer, context.train, self.config.control_weight)
        rng = random.Random(context.seed)
        torch.manual_seed(context.seed)
        self.seed = context.seed
        initial_ids = lm.encode(context.initial_prompt)
        if context.resume_state is None:
            state = SearchState(prompt_ids=list(initial_ids), initial_length=len(initial_ids))
        else:
            state = SearchState.from_dict(context.resume_state)
            rng = rng_from_json(state.rng_state)
            if state.current_reasonings is not None:
                scorer.remember(state.prompt_ids, state.current_reasonings)
        allowed = allowed_token_mask(lm.tokenizer, self.config.token_filter)
        initial = scorer.score(initial_ids)
        if not self.reference:  # the reference's pool holds only prompts a step chose (AM:1414-1419)
            state.offer(initial.accuracy, initial.objective, initial_ids)

        stopped = None
        while state.step < self.config.n_steps and not self._out_of_patience(state):
            stopped = context.budget.spent(lm)
            if stopped:
                log.info("greater: %s after %d steps", stopped, state.step)
                break
            before = dict(lm.counters)
            record = self.step(lm, scorer, state, allowed, rng)
            record.model_calls = _delta(lm.counters, before)
            state.history.append(record.to_dict())
            state.current_reasonings = scorer.score(state.prompt_ids).reasonings
            # Report first, then checkpoint: a kill in between replays this step on resume rather than lose it.
            hooks.on_step_end(record)
            state.rng_state = rng_to_json(rng)
            context.checkpoint(self.name, state.to_dict())

        final_ids, dev_acc = self._final_prompt(lm, context, state, initial_ids)
        final = scorer.score(final_ids)
        return OptimizationResult(
            method=self.name,
            initial_prompt=lm.decode(initial_ids),
            final_prompt=lm.decode(final_ids),
            initial_train_acc=initial.accuracy,
            final_train_acc=final.accuracy,
            final_dev_acc=dev_acc,
            history=[StepRecord.from_dict(h) for h in state.history],
            seconds=time.perf_counter() - started,
            stopped_because=stopped,
            extra={"initial_train_loss": initial.loss, "final_train_loss": final.loss},
        )

    def _out_of_patience(self, state: SearchState) -> bool:
        return self.config.patience > 0 and state.steps_since_best >= self.config.patience

    # ---- one step -----------------------------------------------------------------------------
    def step(
        self, lm: LanguageModel, scorer: PromptScorer, state: SearchState, allowed: torch.Tensor, rng: random.Random
    ) -> StepRecord:
        seconds: dict[str, float] = {}
        timer = _Timer(seconds)
        prompt, j = state.prompt_ids, state.position
        with timer("reasoning"):
            current = scorer.score(prompt)
            # Control (gradient_over_reasoning=False): the answer right after the question, no reasoning.
            reasonings = current.reasonings if self.config.gradient_over_reasoning else [[] for _ in current.reasonings]
            sequences, spans = scorer.sequences(prompt, reasonings)
        with timer("gradient"):
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
        with timer("proposal"):
            groups = sample_groups(len(sequences), self.config.group_size, self.config.n_groups, rng)
            candidates, _ = propose_candidates(
                grad.next_token_logits,
                groups,
                self._allowed_at(allowed, prompt, j),
                self.config.topk,
                self.config.topk_growth,
                self.config.min_candidates,
                self.config.max_topk,
            )
            if prompt[j] not in candidates:
                candidates.append(prompt[j])  # the current token is always ranked too (GO:337-340)
            ranked = self._rank(lm, grad.grads, candidates, state.step)
        with timer("selection"):
            chosen, rescored = self.select(lm, scorer, state, ranked)
        state.prompt_ids = _replace(prompt, j, chosen.prompt_ids[j])
        improved = self._offer(state, chosen)
        if not self.reference:  # ours: every re-scored prompt may enter the pool
            for score in rescored.values():
                improved |= self._offer(state, score)
        state.steps_since_best = 0 if improved else state.steps_since_best + 1
        state.step += 1
        record = self._record(lm, state, j, chosen, ranked, rescored, seconds)
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

    def _offer(self, state: SearchState, score: PromptScore) -> bool:
        if self.reference:  # the reference pool ranks by its selection loss alone (AM:1414-1419)
            return state.offer(score.accuracy, score.selection_loss, score.prompt_ids, self._keep, by="loss")
        return state.offer(score.accuracy, score.objective, score.prompt_ids, self._keep)

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
        if self.reference:
            best = min(reversed(scores), key=lambda score: score.selection_loss)  # ties: the later one
            return best, rescored
        rescored[prompt[j]] = scorer.score(prompt)
        best = max(rescored.values(), key=PromptScore.rank_key)
        return best, rescored

    def _halve(self, scorer: PromptScorer, prompt: list[int], j: int, tokens: list[int]) -> list[int]:
        """The better half of `tokens` (at least one, in their order) by their score on the first half of the
        batch; their rollouts there are cached, so finishing the survivors costs only the second half."""
        if len(tokens) < 2 or len(scorer.examples) < 2:
            return tokens
        half = PromptScorer(scorer.shared, scorer.examples[: len(scorer.examples) // 2], scorer.control_weight)
        partial = dict(zip(tokens, half.score_many([_replace(prompt, j, t) for t in tokens])))
        if self.reference:
            order = sorted(tokens, key=lambda t: partial[t].selection_loss)
        else:
            order = sorted(tokens, key=lambda t: partial[t].rank_key(), reverse=True)
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
            if token == prompt[j] and not self.reference:
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

    def _record(self, lm, state, j, chosen, ranked, rescored, seconds) -> StepRecord:
        candidates = [
            {
                "token_id": t,
                "token": lm.decode([t]),
                "gradient_score": g,
                "train_acc": rescored[t].accuracy if t in rescored else None,
                "train_loss": rescored[t].loss if t in rescored else None,
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
            seconds=sum(seconds.values()),
            stage_seconds=seconds,
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
    def _final_prompt(self, lm, context: OptimizationContext, state, initial_ids) -> tuple[list[int], float | None]:
        """The best `final_pool` prompts by training score, placeholders removed (the reference strips a
        trailing "_", process_for_dev.py); with a dev split, the one with the best dev accuracy (ties: the
        better train score), as the paper picks; without one, the best by train score."""
        pool = [self.strip_placeholder(lm, ids) for _, _, ids in state.leaderboard[: self.config.final_pool]]
        pool = [ids for ids in dict.fromkeys(tuple(ids) for ids in pool) if ids] or [tuple(initial_ids)]
        if not context.dev:
            return list(pool[0]), None
        dev_scorer = PromptScorer(context.scorer, context.dev, self.config.control_weight)
        accuracies = [score.accuracy for score in dev_scorer.score_many([list(ids) for ids in pool])]
        best = max(range(len(pool)), key=lambda i: (accuracies[i], -i))
        return list(pool[best]), accuracies[best]

    def strip_placeholder(self, lm: LanguageModel, ids) -> list[int]:
        """The prompt without the placeholder token: it marks a position still to fill, not a word."""
        placeholder = lm.encode(self.config.placeholder)[-1]
        return [token for token in ids if token != placeholder]


class _Timer:
    """Adds the wall time of each `with timer(stage):` block to seconds[stage]."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    def __call__(self, stage: str) -> _Timer:
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + time.perf_counter() - self.t0


def _delta(after, before: dict) -> dict[str, float]:
    return {k: round(v - before.get(k, 0), 3) for k, v in after.items() if v != before.get(k, 0)}


def _replace(prompt: list[int], j: int, token: int) -> list[int]:
    return prompt[:j] + [token] + prompt[j + 1 :]


def _round_trips(lm: LanguageModel, prompt_ids: list[int]) -> bool:
    return lm.encode(lm.decode(prompt_ids)) == list(prompt_ids)

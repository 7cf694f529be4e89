"""The GReaTer search loop (Das et al., ICLR 2025, section 3): one prompt position a step.

Each step: reason with the current prompt; take the answer loss's gradient at position j together with
the model's own next-token proposals there; rank the proposals by gradient; re-score the best few by
regenerating the reasoning; keep the best; move to the next position (growing or wrapping the prompt).
The engine reports through callbacks and knows nothing of logging.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import torch

from greater.checkpoint import rng_from_json, rng_to_json
from greater.models.language_model import LanguageModel
from greater.optimizers.base import OptimizationContext, OptimizationResult, Optimizer, OptimizerConfig
from greater.optimizers.gradient import position_gradient, rank_by_gradient
from greater.optimizers.proposal import allowed_token_mask, propose_candidates, sample_groups
from greater.optimizers.registry import register_optimizer
from greater.optimizers.scoring import PromptScore, PromptScorer
from greater.optimizers.search_state import SearchState
from greater.records import StepRecord
from greater.tasks.base import Task

log = logging.getLogger(__name__)


@dataclass
class GreaterConfig(OptimizerConfig):
    name: str = "greater"
    n_steps: int = 125  # optimization steps (one position each)
    topk: int = 30  # next-token candidates per example before intersection
    topk_growth: int = 2  # k grows by this until `min_candidates` survive the intersection
    min_candidates: int = 6
    max_topk: int = 200
    group_size: int = 5  # examples per intersection group
    n_groups: int = 6  # q random groups; candidates = union over groups of the intersection within each
    n_rescore: int = 3  # best-ranked candidates re-scored by regenerating the reasoning
    control_weight: float = 0.2  # weight of the fluency term (the prompt's own cross-entropy)
    patience: int = 0  # stop after this many steps without a better prompt; 0 never stops early
    period_early_accept: bool = True  # a period candidate at a late position is taken at once
    placeholder: str = "_"  # its last token is appended when the prompt grows past its end
    keep_ascii_only: bool = True
    n_best_for_dev: int = 3  # final prompt: the best this many by train score, re-ranked on dev when a dev split exists

    def __post_init__(self) -> None:
        if self.n_steps < 0 or min(self.topk, self.n_rescore, self.group_size, self.n_groups) < 1:
            raise ValueError("optimizer: n_steps >= 0 and topk, n_rescore, group_size, n_groups >= 1 are required")


@register_optimizer
class GreaterOptimizer(Optimizer):
    name = "greater"
    config_class = GreaterConfig
    config: GreaterConfig

    def __init__(self, config: GreaterConfig | None = None) -> None:
        super().__init__(config or GreaterConfig())
        c = self.config
        self.n_steps, self.topk, self.topk_growth = c.n_steps, c.topk, c.topk_growth
        self.min_candidates, self.max_topk = c.min_candidates, c.max_topk
        self.group_size, self.n_groups, self.n_rescore = c.group_size, c.n_groups, c.n_rescore
        self.control_weight, self.patience = c.control_weight, c.patience
        self.period_early_accept, self.placeholder = c.period_early_accept, c.placeholder
        self.keep_ascii_only, self.n_best_for_dev = c.keep_ascii_only, c.n_best_for_dev

    # ---- the loop -----------------------------------------------------------------------------
    def optimize(self, lm: LanguageModel, task: Task, context: OptimizationContext) -> OptimizationResult:
        started = time.perf_counter()
        hooks = context.callbacks
        scorer = PromptScorer(context.scorer, context.train, self.control_weight)
        rng = random.Random(context.seed)
        torch.manual_seed(context.seed)
        initial_ids = lm.encode(context.initial_prompt)
        if context.resume_state is None:
            state = SearchState(prompt_ids=list(initial_ids), initial_length=len(initial_ids))
        else:
            state = SearchState.from_dict(context.resume_state)
            rng = rng_from_json(state.rng_state)
            if state.current_reasonings is not None:
                scorer.remember(state.prompt_ids, state.current_reasonings)
        allowed = allowed_token_mask(lm.tokenizer, self.keep_ascii_only)
        initial = scorer.score(initial_ids)
        state.offer(initial.accuracy, initial.objective, initial_ids)

        stopped = None
        while state.step < self.n_steps and not self._out_of_patience(state):
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

        final_ids, dev_acc = self._final_prompt(lm, context, state)
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
        return self.patience > 0 and state.steps_since_best >= self.patience

    # ---- one step -----------------------------------------------------------------------------
    def step(
        self, lm: LanguageModel, scorer: PromptScorer, state: SearchState, allowed: torch.Tensor, rng: random.Random
    ) -> StepRecord:
        seconds: dict[str, float] = {}
        timer = _Timer(seconds)
        prompt, j = state.prompt_ids, state.position
        with timer("reasoning"):
            current = scorer.score(prompt)
            sequences, spans = scorer.sequences(prompt, current.reasonings)
        with timer("gradient"):
            grad = position_gradient(lm, sequences, spans, scorer.prompt_starts(), prompt, j, self.control_weight)
        with timer("proposal"):
            groups = sample_groups(len(sequences), self.group_size, self.n_groups, rng)
            candidates, _ = propose_candidates(
                grad.next_token_logits,
                groups,
                allowed,
                self.topk,
                self.topk_growth,
                self.min_candidates,
                self.max_topk,
            )
            if prompt[j] not in candidates:
                candidates.append(prompt[j])  # the current token always stays a candidate
            ranked = rank_by_gradient(lm, grad.grads, candidates)
        with timer("selection"):
            chosen, rescored = self.select(lm, scorer, state, ranked)
        state.prompt_ids = _replace(prompt, j, chosen.prompt_ids[j])
        improved = state.offer(chosen.accuracy, chosen.objective, chosen.prompt_ids)
        for score in rescored.values():
            improved |= state.offer(score.accuracy, score.objective, score.prompt_ids)
        state.steps_since_best = 0 if improved else state.steps_since_best + 1
        state.step += 1
        record = self._record(lm, state, j, chosen, ranked, rescored, seconds)
        state.prompt_ids, state.position = self.advance(lm, state.prompt_ids, j)
        return record

    def select(
        self, lm: LanguageModel, scorer: PromptScorer, state: SearchState, ranked: list[tuple[int, float]]
    ) -> tuple[PromptScore, dict[int, PromptScore]]:
        """Re-score the best-ranked candidates by reasoning with them; keep the best (accuracy, then loss).

        The current token competes too (its score is cached, so this costs nothing): a step never makes the
        prompt worse on the training batch. A candidate with a period at a late position is taken at once,
        so prompts can close off a sentence.
        """
        prompt, j = state.prompt_ids, state.position
        tokens = self._tokens_to_rescore(lm, prompt, j, state.initial_length, ranked)
        # All trials reason in one batched generation; the result is the same as scoring them one by one.
        scores = scorer.score_many([_replace(prompt, j, token) for token in tokens])
        rescored = dict(zip(tokens, scores))
        if tokens and self._accept_at_once(lm, tokens[-1], j, state.initial_length):
            return rescored[tokens[-1]], rescored
        rescored[prompt[j]] = scorer.score(prompt)
        best = max(rescored.values(), key=PromptScore.rank_key)
        return best, rescored

    def _tokens_to_rescore(
        self, lm: LanguageModel, prompt: list[int], j: int, initial_length: int, ranked: list[tuple[int, float]]
    ) -> list[int]:
        """The best-ranked replacements, up to `n_rescore`; the list stops early at one that would be
        accepted at once (a period late in the prompt), since nothing after it would be looked at."""
        tokens: list[int] = []
        for token, _ in ranked:
            if token == prompt[j]:
                continue
            if not _round_trips(lm, _replace(prompt, j, token)):
                continue  # the text of this prompt would tokenize differently: not a prompt a user can copy
            tokens.append(token)
            if self._accept_at_once(lm, token, j, initial_length) or len(tokens) == self.n_rescore:
                break
        return tokens

    def _accept_at_once(self, lm: LanguageModel, token: int, j: int, initial_length: int) -> bool:
        return self.period_early_accept and "." in lm.decode([token]) and j >= initial_length / 2

    def advance(self, lm: LanguageModel, prompt: list[int], j: int) -> tuple[list[int], int]:
        """Next position; past the end, wrap to the start if the last token closes a sentence (holds a
        period), else grow the prompt by a placeholder token to optimize next."""
        if j + 1 < len(prompt):
            return prompt, j + 1
        if "." in lm.decode(prompt[-1:]):
            return prompt, 0
        return prompt + lm.encode(self.placeholder)[-1:], j + 1

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
    def _final_prompt(self, lm, context: OptimizationContext, state) -> tuple[list[int], float | None]:
        """The best prompt by training score; with a dev split, the best of the top few by dev score."""
        top = [ids for _, _, ids in state.leaderboard[: self.n_best_for_dev]]
        if not context.dev:
            return top[0], None
        dev_scorer = PromptScorer(context.scorer, context.dev, self.control_weight)
        best = max(top, key=lambda ids: dev_scorer.score(ids).rank_key())
        return best, dev_scorer.score(best).accuracy


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

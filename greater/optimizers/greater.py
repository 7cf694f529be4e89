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
from pathlib import Path

import torch

from greater.callbacks.base import Callback, CallbackList
from greater.models.language_model import LanguageModel
from greater.optimizers.base import CandidateScore, OptimizationResult, StepRecord
from greater.optimizers.gradient import position_gradient, rank_by_gradient
from greater.optimizers.proposal import allowed_token_mask, propose_candidates, sample_groups
from greater.optimizers.scoring import PromptScore, PromptScorer
from greater.optimizers.search_state import SearchState, save_state
from greater.tasks.base import Example, Task

log = logging.getLogger(__name__)


class GreaterOptimizer:
    def __init__(
        self,
        n_steps: int = 125,
        topk: int = 30,
        topk_growth: int = 2,
        min_candidates: int = 6,
        max_topk: int = 200,
        group_size: int = 5,
        n_groups: int = 6,
        n_rescore: int = 3,
        control_weight: float = 0.2,
        patience: int = 0,
        period_early_accept: bool = True,
        placeholder: str = "_",
        keep_ascii_only: bool = True,
        n_best_for_dev: int = 3,
    ) -> None:
        if n_steps < 0 or topk < 1 or n_rescore < 1 or group_size < 1 or n_groups < 1:
            raise ValueError("optimizer: n_steps >= 0 and topk, n_rescore, group_size, n_groups >= 1 are required")
        self.n_steps, self.topk, self.topk_growth = n_steps, topk, topk_growth
        self.min_candidates, self.max_topk = min_candidates, max_topk
        self.group_size, self.n_groups, self.n_rescore = group_size, n_groups, n_rescore
        self.control_weight, self.patience = control_weight, patience
        self.period_early_accept, self.placeholder = period_early_accept, placeholder
        self.keep_ascii_only, self.n_best_for_dev = keep_ascii_only, n_best_for_dev

    # ---- the loop -----------------------------------------------------------------------------
    def optimize(
        self,
        lm: LanguageModel,
        task: Task,
        train: list[Example],
        callbacks: list[Callback] | None = None,
        *,
        dev: list[Example] | None = None,
        prompt: str | None = None,
        placement: str = "after",
        max_reasoning_tokens: int = 1024,
        seed: int = 0,
        run_dir: Path | None = None,
        state: SearchState | None = None,
    ) -> OptimizationResult:
        started = time.perf_counter()
        hooks = CallbackList(callbacks)
        scorer = PromptScorer(lm, task, train, placement, max_reasoning_tokens, self.control_weight)
        rng = random.Random(seed)
        torch.manual_seed(seed)
        initial_ids = lm.encode(prompt if prompt is not None else task.initial_prompt)
        if state is None:
            state = SearchState(prompt_ids=list(initial_ids), initial_length=len(initial_ids))
        else:
            rng.setstate(state.rng_state)
            if state.current_reasonings is not None:
                scorer.cache[tuple(state.prompt_ids)] = scorer.score_with(state.prompt_ids, state.current_reasonings)
        allowed = allowed_token_mask(lm.tokenizer, self.keep_ascii_only)
        initial = scorer.score(initial_ids)
        state.offer(initial.accuracy, initial.objective, initial_ids)

        while state.step < self.n_steps and not self._out_of_patience(state):
            hooks.on_step_start(state.step, state.position, lm.decode(state.prompt_ids))
            record = self.step(lm, scorer, state, allowed, rng)
            state.history.append(record.to_dict())
            state.current_reasonings = scorer.score(state.prompt_ids).reasonings
            # Report first, then checkpoint: a kill in between replays this step on resume rather than lose it.
            hooks.on_step_end(record)
            if run_dir is not None:
                save_state(state, run_dir, rng)

        final_ids, dev_acc = self._final_prompt(lm, task, state, dev, placement, max_reasoning_tokens)
        final = scorer.score(final_ids)
        return OptimizationResult(
            initial_prompt=lm.decode(initial_ids),
            final_prompt=lm.decode(final_ids),
            initial_train_acc=initial.accuracy,
            final_train_acc=final.accuracy,
            initial_train_loss=initial.loss,
            final_train_loss=final.loss,
            final_dev_acc=dev_acc,
            history=[StepRecord.from_dict(h) for h in state.history],
            seconds=time.perf_counter() - started,
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
            CandidateScore(
                token_id=t,
                token=lm.decode([t]),
                gradient_score=g,
                train_acc=rescored[t].accuracy if t in rescored else None,
                train_loss=rescored[t].loss if t in rescored else None,
            )
            for t, g in ranked
        ]
        best_acc, best_loss, best_ids = state.leaderboard[0]
        return StepRecord(
            step=state.step,
            position=j,
            prompt=lm.decode(state.prompt_ids),
            prompt_ids=list(state.prompt_ids),
            chosen_token=lm.decode([state.prompt_ids[j]]),
            candidates=candidates,
            train_loss=chosen.loss,
            train_acc=chosen.accuracy,
            best_prompt=lm.decode(best_ids),
            best_train_acc=best_acc,
            best_train_loss=best_loss,
            seconds=seconds,
        )

    # ---- the final prompt -----------------------------------------------------------------------
    def _final_prompt(self, lm, task, state, dev, placement, max_reasoning_tokens) -> tuple[list[int], float | None]:
        """The best prompt by training score; with a dev split, the best of the top few by dev score."""
        top = [ids for _, _, ids in state.leaderboard[: self.n_best_for_dev]]
        if not dev:
            return top[0], None
        dev_scorer = PromptScorer(lm, task, dev, placement, max_reasoning_tokens, self.control_weight)
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


def _replace(prompt: list[int], j: int, token: int) -> list[int]:
    return prompt[:j] + [token] + prompt[j + 1 :]


def _round_trips(lm: LanguageModel, prompt_ids: list[int]) -> bool:
    return lm.encode(lm.decode(prompt_ids)) == list(prompt_ids)

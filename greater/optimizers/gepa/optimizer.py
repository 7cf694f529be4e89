"""GEPA as a method: `gepa.optimize` over our scorer (ScorerAdapter) with our writer reflecting.

The algorithm is GEPA's own: a per-instance Pareto front on the selection split (dev, or train without one),
parents sampled by the examples they win, reflection on a train minibatch, acceptance on that minibatch, merge
when asked for, and a budget of metric calls; our budget (tokens, seconds, rollouts) stops it too.

Resume: GEPA saves its state in <run_dir>/gepa at the start of every iteration (our adapter's randomness and
sampler position with it) and reads it back when the directory exists; our checkpoint.json is written at the
same moment (history and usage, by the run's `save_step`), so a killed run continues from its last started
iteration as if unbroken.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import TYPE_CHECKING, Any

try:
    import gepa
except ImportError:  # an optional extra: one line, with the fix
    raise ImportError("optimizer=gepa needs the gepa package; pip install 'greater[gepa]' (or gepa==0.1.4)") from None
from gepa.strategies.batch_sampler import EpochShuffledBatchSampler
from gepa.strategies.candidate_selector import (
    CurrentBestCandidateSelector,
    EpsilonGreedyCandidateSelector,
    ParetoCandidateSelector,
)

from greater.lifecycle.loop import save_step
from greater.optimizers.base import Found, OptimizationContext, OptimizationResult, Optimizer
from greater.optimizers.gepa.adapter import COMPONENT, ScorerAdapter, WriterStopped
from greater.optimizers.gepa.config import GEPAConfig
from greater.optimizers.loop import usage_delta
from greater.records import StepRecord
from greater.writers.base import Writer
from greater.writers.local import TaskModelWriter

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel
    from greater.tasks.base import Task

log = logging.getLogger(__name__)
STATE_DIR = "gepa"  # GEPA's own run_dir inside ours
SELECTORS = {
    "pareto": lambda rng: ParetoCandidateSelector(rng=rng),
    "current_best": lambda rng: CurrentBestCandidateSelector(),
    "epsilon_greedy": lambda rng: EpsilonGreedyCandidateSelector(epsilon=0.1, rng=rng),
}


class Steps:
    """GEPA's callbacks: a StepRecord per iteration, and our checkpoint whenever GEPA saves its state."""

    def __init__(self, optimizer: GEPAOptimizer, lm: LanguageModel, ctx: OptimizationContext, history) -> None:
        self.optimizer, self.lm, self.ctx, self.history = optimizer, lm, ctx, history
        self._before, self._started = lm.usage.flat(), time.perf_counter()
        self.error: Exception | None = None

    def on_state_saved(self, event: dict[str, Any]) -> None:
        self._guard(self._save)

    def _save(self) -> None:
        save_step(self.ctx, self.optimizer.name, self.history, {})  # GEPA's own state is in its directory
        self._before, self._started = self.lm.usage.flat(), time.perf_counter()

    def on_optimization_end(self, event: dict[str, Any]) -> None:
        self._guard(self._save)  # after GEPA's last save: the last iteration's record is kept too

    def on_iteration_end(self, event: dict[str, Any]) -> None:
        self._guard(self._record, event)

    def _guard(self, fn, *args: Any) -> None:
        """GEPA logs a callback's exception and goes on; ours must not vanish: kept, raised after the run."""
        if self.error is None:
            try:
                fn(*args)
            except Exception as err:
                self.error = err

    def _record(self, event: dict[str, Any]) -> None:
        state = event["state"]
        scores = state.program_full_scores_val_set
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        newest = len(state.program_candidates) - 1
        record = StepRecord(
            step=len(self.history) + 1,
            method=self.optimizer.name,
            prompt=state.program_candidates[newest][COMPONENT],
            train_score=None,  # GEPA scores it on a minibatch only; the selection split's score is best_score's kind
            best_prompt=state.program_candidates[best][COMPONENT],
            best_score=scores[best],
            details={
                "accepted": bool(event["proposal_accepted"]),
                "metric_calls": state.total_num_evals,
                "n_candidates": len(state.program_candidates),
            },
        )
        record.seconds = time.perf_counter() - self._started
        record.model_calls = usage_delta(self.lm.usage.flat(), self._before)
        self.history.append(record)
        self.ctx.callbacks.on_step_end(record)


class GEPAOptimizer(Optimizer):
    name = "gepa"
    config_class = GEPAConfig
    config: GEPAConfig

    def __init__(self, config: GEPAConfig, writer: Writer | None = None) -> None:
        super().__init__(config)
        self.writer = writer  # built from `config.writer` (greater.writers.build); None: the task model reflects

    def search(self, lm: LanguageModel, task: Task, context: OptimizationContext) -> Found:
        c = self.config
        if c.candidate_selection not in SELECTORS:
            raise ValueError(
                f"optimizer.candidate_selection={c.candidate_selection}: use one of {', '.join(SELECTORS)}"
            )
        adapter = ScorerAdapter(lm, context.scorer, self.writer or TaskModelWriter(lm), c, context.seed)
        adapter.start = context.initial_prompt
        adapter.sampler = EpochShuffledBatchSampler(minibatch_size=c.minibatch_size, rng=adapter.rng)
        saved = context.resume_state
        history = [StepRecord.from_dict(h) for h in saved["history"]] if saved else []
        steps = Steps(self, lm, context, history)
        try:
            found = self._run(adapter, context, lm, steps)
        except WriterStopped as stop:
            raise stop.error from None
        if steps.error is not None:
            raise steps.error
        stopped = context.budget.spent(lm)
        # GEPA's candidates best first on the selection split (the older on a tie); the pick on dev agrees
        order = sorted(range(len(found.candidates)), key=lambda i: (-found.val_aggregate_scores[i], i))
        prompts = [found.candidates[i][COMPONENT] for i in order]

        def finish(index: int, seconds: float) -> OptimizationResult:
            final = prompts[index]
            train = {p: s.accuracy for p, s in zip(*_train_scores(context, lm, [context.initial_prompt, final]))}
            return OptimizationResult(
                method=self.name,
                initial_prompt=context.initial_prompt,
                final_prompt=final,
                initial_train_acc=train[context.initial_prompt],
                final_train_acc=train[final],
                history=history,
                seconds=seconds,
                stopped_because=stopped,
                extra={
                    "metric_calls": found.total_metric_calls,
                    "max_metric_calls": c.max_metric_calls,
                    "n_candidates": len(found.candidates),
                    "rejected": dict(adapter.rejected),  # proposals the shared validator refused, by reason
                    "selection_split": "dev" if context.dev else "train",
                    "pareto_front": sorted({i for s in found.per_val_instance_best_candidates.values() for i in s}),
                },
            )

        return Found([lm.encode(p) for p in prompts], finish)

    def _run(self, adapter: ScorerAdapter, context: OptimizationContext, lm: LanguageModel, steps: Steps):
        c = self.config
        return gepa.optimize(
            seed_candidate={COMPONENT: context.initial_prompt},
            trainset=list(context.train),
            valset=list(context.dev or context.train),  # the selection split: GEPA's Pareto front is kept on it
            adapter=adapter,
            reflection_lm=adapter.reflect,
            candidate_selection_strategy=SELECTORS[c.candidate_selection](adapter.rng),
            batch_sampler=adapter.sampler,
            skip_perfect_score=c.skip_perfect_score,
            use_merge=c.use_merge,
            max_merge_invocations=c.max_merge_invocations,
            max_metric_calls=c.max_metric_calls,
            stop_callbacks=[lambda _state: context.budget.spent(lm) is not None],
            run_dir=self._state_dir(context),
            callbacks=[steps],
            seed=context.seed,
            raise_on_exception=True,
            logger=_Quiet(),
        )

    @staticmethod
    def _state_dir(context: OptimizationContext) -> str | None:
        """GEPA's own state directory; a fresh run starts without one (GEPA would continue from it)."""
        if context.run_dir is None:
            return None
        path = context.run_dir / STATE_DIR
        if context.resume_state is None and path.exists():
            shutil.rmtree(path)
        return str(path)


def _train_scores(context: OptimizationContext, lm, prompts: list[str]):
    unique = list(dict.fromkeys(prompts))
    return unique, context.scorer.score_texts(unique, context.train)


class _Quiet:
    """GEPA's log lines go to our logger at debug level (the callbacks report the steps)."""

    def log(self, message: str, *args: Any, **kwargs: Any) -> None:
        log.debug("gepa: %s", message)

"""The test evaluation of a run: which prompts, on which examples, with which models, and what is already known.

One plan serves a fresh run (the optimizing model is loaded already) and a finished run resumed with other
evaluation settings (nothing is loaded until something is missing): the `PredictionStore` says what is
known, and only the missing (model, prompt, example) triples are evaluated. Transfer models load one at a
time; one that cannot load (gated, offline, out of memory) is reported and skipped. Each example is checked
against the model's context window before anything is generated. The evaluation runs a generation batch at
a time and keeps each batch's predictions (greater.evaluation.store), so a stop (SIGTERM, SIGINT) ends it at
the next batch boundary and `resume=` evaluates only what is missing.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

import torch

from greater.callbacks.base import CallbackList
from greater.config import ModelConfig, RunConfig
from greater.evaluation.context import check_context
from greater.evaluation.evaluator import EvaluationResult, evaluate_in_batches
from greater.evaluation.metrics import test_metric
from greater.evaluation.store import PredictionStore
from greater.lifecycle.results import TestRow
from greater.lifecycle.stop import in_flight, raise_if_stopped
from greater.models.language_model import LanguageModel
from greater.tasks import Example, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationPlan:
    prompts: dict[str, str]  # prompt kind (initial | final) -> prompt
    test: list[Example]
    models: list[ModelConfig]  # the first is the optimizing model, which must load
    cfg: RunConfig  # evaluation settings, reasoning length, placement, cache_dir
    unchanged: bool = False  # the final prompt is the initial one: its row stands for both

    @classmethod
    def of(
        cls, cfg: RunConfig, initial: str, final: str, test: list[Example], transfer: list[ModelConfig]
    ) -> EvaluationPlan:
        """The final prompt, and the initial one too when it differs and evaluation.evaluate_initial."""
        both = cfg.evaluation.evaluate_initial and initial != final
        prompts = {"initial": initial, "final": final} if both else {"final": final}
        return cls(prompts, test, [cfg.model, *transfer], cfg, unchanged=initial == final)


def evaluate(
    plan: EvaluationPlan, task: Task, store: PredictionStore, callbacks: CallbackList, lm: LanguageModel | None = None
) -> list[TestRow]:
    """One test row per (model, prompt kind); `lm` is the optimizing model when it is loaded already."""
    rows: list[TestRow] = []
    for i, model_cfg in enumerate(plan.models):
        rows += _evaluate_model(plan, task, store, callbacks, model_cfg, lm if i == 0 else None, required=i == 0)
        if i > 0 or lm is None:  # a model loaded here: one in memory at a time
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return rows


def _evaluate_model(
    plan: EvaluationPlan,
    task: Task,
    store: PredictionStore,
    callbacks: CallbackList,
    model_cfg: ModelConfig,
    lm: LanguageModel | None,
    required: bool,
) -> list[TestRow]:
    cfg = plan.cfg
    rows = []
    for kind, prompt in plan.prompts.items():
        missing = store.missing(model_cfg, prompt, plan.test)
        seconds = store.saved_seconds(model_cfg.name, prompt)
        hits = None
        if missing:
            if lm is None:
                lm = _load(cfg, model_cfg, required)
                if lm is None:
                    return []
            ev = cfg.evaluation
            check_context(lm, task, missing, prompt, cfg.task.placement, cfg.max_reasoning_tokens, ev.max_answer_tokens)
            log.info("evaluating the %s prompt on %d test examples with %s", kind, len(missing), lm.name)
            cached = lm.generations is not None  # the generation cache is on: count what it served
            before = lm.usage.of(lm.role).cache_hits if cached else 0
            seconds += _evaluate_missing(plan, task, store, callbacks, model_cfg, lm, prompt, missing)
            hits = lm.usage.of(lm.role).cache_hits - before if cached else None
        known = store.known(model_cfg, prompt)
        res = EvaluationResult(model_cfg.name, prompt, [known[ex.id] for ex in plan.test], seconds)
        row = _row(res, kind, store.write(res.model, kind, res.predictions), test_metric(cfg.evaluation.mode), hits)
        store.finish(model_cfg, prompt)
        callbacks.on_evaluation_end(row)
        rows.append(row)
    if plan.unchanged:  # not when evaluation.evaluate_initial=false skipped a different initial prompt
        rows.append(TestRow(**{**rows[0].__dict__, "prompt_kind": "initial"}))
    return rows


def _evaluate_missing(
    plan: EvaluationPlan,
    task: Task,
    store: PredictionStore,
    callbacks: CallbackList,
    model_cfg: ModelConfig,
    lm: LanguageModel,
    prompt: str,
    missing: list[Example],
) -> float:
    """Evaluate `missing` a generation batch at a time, each batch's predictions kept as it ends; a stop asked
    for ends the evaluation at the next batch boundary. Returns the seconds it took."""
    cfg, seconds, done = plan.cfg, 0.0, [0]
    lm.on_generation = lambda finished, _: callbacks.on_generation(done[0] + finished, len(missing))
    batches = evaluate_in_batches(
        lm, task, missing, prompt, cfg.evaluation, cfg.max_reasoning_tokens, cfg.task.placement
    )
    with in_flight("evaluation batch"):
        for new in batches:
            store.add(model_cfg, prompt, new.predictions)
            seconds, done[0] = seconds + new.seconds, done[0] + new.n
            raise_if_stopped()  # the safe point: this batch's predictions are on disk
    lm.on_generation = callbacks.on_generation
    return seconds


def _row(res: EvaluationResult, kind: str, predictions_file: str, metric: str, cache_hits: int | None) -> TestRow:
    return TestRow(
        model=res.model,
        prompt_kind=kind,
        acc=res.accuracy,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        n=res.n,
        n_unparsed=res.n_unparsed,
        seconds=round(res.seconds, 2),
        predictions_file=predictions_file,
        metric=metric,
        cache_hits=cache_hits,
    )


def _load(cfg: RunConfig, model_cfg: ModelConfig, required: bool) -> LanguageModel | None:
    """The model; a transfer model (not `required`) that cannot load is reported and skipped: the rows
    already computed are kept."""
    try:
        lm = LanguageModel.from_config(model_cfg, cfg.cache_dir)
        if getattr(cfg, "generation_cache", False):
            lm.use_generation_cache(cfg.cache_dir, cfg.generation_cache_mb)
        return lm
    except (OSError, ValueError, ImportError, RuntimeError) as err:
        if required:
            raise
        log.error(
            "could not load %s for transfer evaluation (%s); the other results are kept",
            model_cfg.name,
            str(err).splitlines()[0] if str(err) else type(err).__name__,
        )
        return None

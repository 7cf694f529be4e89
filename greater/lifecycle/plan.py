"""The test evaluation of a run: which prompts, on which examples, with which models, and what is already known.

One plan serves a fresh run (the optimizing model is loaded already) and a finished run resumed with other
evaluation settings (nothing is loaded until something is missing): the `PredictionStore` says what is
known, and only the missing (model, prompt, example) triples are evaluated. Transfer models load one at a
time; one that cannot load (gated, offline, out of memory) is reported and skipped.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from typing import Any

import torch

from greater.callbacks.base import CallbackList
from greater.evaluation.evaluator import EvaluationResult, evaluate_prompt
from greater.evaluation.metrics import test_metric
from greater.evaluation.store import PredictionStore
from greater.lifecycle.results import TestRow
from greater.models.language_model import LanguageModel
from greater.tasks import Example, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationPlan:
    prompts: dict[str, str]  # prompt kind (initial | final) -> prompt
    test: list[Example]
    models: list[Any]  # model configs; the first is the optimizing model, which must load
    cfg: Any  # the run's config: evaluation settings, reasoning length, placement, cache_dir
    unchanged: bool = False  # the final prompt is the initial one: its row stands for both

    @classmethod
    def of(cls, cfg: Any, initial: str, final: str, test: list[Example], transfer: list[Any]) -> EvaluationPlan:
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
    model_cfg: Any,
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
                lm.on_generation = callbacks.on_generation
            log.info("evaluating the %s prompt on %d test examples with %s", kind, len(missing), lm.name)
            placement = cfg.task.placement
            cached = getattr(lm, "generations", None) is not None  # the generation cache is on
            before = lm.usage.of(lm.role).cache_hits if cached else 0
            new = evaluate_prompt(lm, task, missing, prompt, cfg.evaluation, cfg.max_reasoning_tokens, placement)
            hits = lm.usage.of(lm.role).cache_hits - before if cached else None
            store.add(model_cfg, prompt, new.predictions)
            seconds += new.seconds
        known = store.known(model_cfg, prompt)
        res = EvaluationResult(model_cfg.name, prompt, [known[ex.id] for ex in plan.test], seconds)
        row = _row(res, kind, store.write(res.model, kind, res.predictions), test_metric(cfg.evaluation.mode), hits)
        callbacks.on_evaluation_end(row)
        rows.append(row)
    if plan.unchanged:  # not when evaluation.evaluate_initial=false skipped a different initial prompt
        rows.append(TestRow(**{**rows[0].__dict__, "prompt_kind": "initial"}))
    return rows


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


def _load(cfg: Any, model_cfg: Any, required: bool) -> LanguageModel | None:
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

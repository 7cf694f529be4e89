"""One run from a composed config: build the parts, optimize, evaluate, write the run directory.

Hydra-free: `run(cfg)` takes any DictConfig shaped like `RunConfig`, so notebooks and tests can call it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from greater.callbacks import build_callbacks
from greater.config import ModelConfig
from greater.engine.rollouts import Scorer
from greater.evaluation.evaluator import EvaluationResult, Prediction, evaluate_prompt
from greater.models.language_model import LanguageModel
from greater.models.registry import load_model_config
from greater.optimizers.base import Budget, OptimizationContext, OptimizationResult, Optimizer
from greater.optimizers.registry import build_optimizer
from greater.run import resume
from greater.run.checkpoint import load_checkpoint, load_counters, load_seconds
from greater.run.results import RunResult, TestRow
from greater.run.validate import validate
from greater.tasks import Example, Task, build_task

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything a run needs but the model, checked: what `run` does before minutes of loading weights."""

    cfg: DictConfig
    run_dir: Path
    task: Task
    test: list[Example]
    optimizer: Optimizer
    state: dict[str, Any] | None  # the optimizer's checkpointed state when resuming
    transfer: list[ModelConfig]
    finished: bool = False  # a finished run: only what its result.json lacks is evaluated


def prepare(cfg: DictConfig) -> Prepared:
    """Resolve a resume, check every setting that can be checked without the model, load the data."""
    resumed = resume.resolve(cfg, _command_overrides(), multirun=_hydra_mode() == "MULTIRUN")
    cfg = resumed.cfg
    check_config(cfg)
    task = build_task(cfg.task, cfg.data_dir, cfg.seed, cfg.cache_dir)  # data problems fail before the model loads
    test = task.test[: cfg.evaluation.n_test] if cfg.evaluation.n_test else task.test
    optimizer = build_optimizer(cfg.optimizer)
    state = load_checkpoint(resumed.run_dir, optimizer.name) if resumed.from_checkpoint else None
    transfer = [load_model_config(name) for name in cfg.evaluation.models]  # unknown names fail before any work
    return Prepared(cfg, resumed.run_dir, task, test, optimizer, state, transfer, resumed.finished)


def check_config(cfg: DictConfig) -> None:
    """Every setting, checked before anything loads: bounds and the rules between settings (run/validate.py)."""
    validate(cfg, search=_is_search())


def run(cfg: DictConfig) -> float | None:
    """Optimize and evaluate; returns the sweep objective: the final prompt's dev accuracy, None without a
    dev split (never test accuracy: a search that tuned on it would report a biased test score)."""
    started = time.perf_counter()
    p = prepare(cfg)
    cfg, run_dir = p.cfg, p.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if p.finished:
        return evaluate_finished(p, started)
    (run_dir / resume.CONFIG_NAME).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    lm = LanguageModel.from_config(cfg.model, cfg.cache_dir)
    if p.state is not None:  # the work done before the stop counts toward the budget and the reported compute
        lm.counters.update(load_counters(run_dir))
    # Steps are counted from 1; a resumed run's first step is the one after the last saved.
    start_step = len(p.state.get("history", [])) + 1 if p.state else 0
    callbacks = build_callbacks(cfg.logger, run_dir, start_step=start_step)
    lm.on_generation = callbacks.on_generation
    try:
        callbacks.on_run_start(_run_info(cfg, run_dir, start_step))
        scorer = Scorer(lm, p.task, cfg.task.placement, cfg.max_reasoning_tokens)
        context = OptimizationContext(
            train=p.task.train,
            dev=p.task.dev,
            initial_prompt=cfg.prompt if cfg.prompt is not None else p.task.initial_prompt,
            placement=cfg.task.placement,
            max_reasoning_tokens=cfg.max_reasoning_tokens,
            scorer=scorer,
            callbacks=callbacks,
            # a resumed run's time budget counts the time it spent before the stop
            budget=Budget(p.optimizer.config.budget, load_seconds(run_dir) if p.state is not None else 0.0),
            seed=cfg.seed,
            run_dir=run_dir,
            resume_state=p.state,
            counters=lm.counters,
        )
        optimized = p.optimizer.optimize(lm, p.task, context)
        compute = {k: round(v, 3) for k, v in sorted(lm.counters.items())}  # optimization only, before the test
        if optimized.final_dev_acc is None and p.task.dev:  # a method that did not look at dev: score it here
            optimized.final_dev_acc = scorer.score_text(optimized.final_prompt, p.task.dev).accuracy
        opt_seconds = time.perf_counter() - started
        evaluations = _evaluate_all(cfg, lm, p.transfer, p.task, p.test, optimized, run_dir, callbacks)
        result = _result(cfg, p.task, optimized, evaluations, compute, opt_seconds, time.perf_counter() - started)
        result.write(run_dir)
        callbacks.on_run_end(result.to_dict())
    except KeyboardInterrupt:
        log.warning("interrupted: the last completed step is saved; continue with resume=%s", run_dir)
        raise
    finally:
        callbacks.close()
    return optimized.final_dev_acc


def evaluate_finished(p: Prepared, started: float) -> float | None:
    """A finished run resumed with other evaluation settings: no optimization; the final (and initial) prompt
    is evaluated only on the (model, test example) pairs its result.json lacks, the saved predictions of the
    others are kept (when evaluation.mode and max_answer_tokens are the saved ones), and result.json is
    rewritten with the rows this config asks for. The models load only when something is missing."""
    cfg, run_dir = p.cfg, p.run_dir
    old = RunResult.read(run_dir)
    saved = resume.saved_config(run_dir)
    changed = resume.changed_keys(saved.evaluation, cfg.evaluation)
    same_settings = "mode" not in changed and "max_answer_tokens" not in changed
    prompts = _prompts(cfg, old.initial_prompt, old.final_prompt)
    evaluations: list[tuple[str, EvaluationResult]] = []
    for model_cfg in [cfg.model, *p.transfer]:
        done = {kind: _saved_predictions(run_dir, old, model_cfg.name, kind) for kind in prompts if same_settings}
        required = model_cfg is cfg.model
        evaluations += _evaluate_model(cfg, model_cfg, None, p.task, p.test, prompts, run_dir, None, done, required)
        gc.collect()
    (run_dir / resume.CONFIG_NAME).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    seconds = {**old.seconds, "total": round(old.seconds.get("total", 0.0) + time.perf_counter() - started, 2)}
    replace(old, test=_test_rows(evaluations), seconds=seconds).write(run_dir)
    log.info("finished run in %s: not optimized again, only the missing evaluations ran", run_dir)
    return old.dev_acc


def _saved_predictions(run_dir: Path, old: RunResult, model: str, kind: str):
    """The predictions of (model, kind) that `old` saved, with the seconds they took; None when there are none."""
    row = next((r for r in old.test if r.model == model and r.prompt_kind == kind and r.predictions_file), None)
    if row is None or not (run_dir / row.predictions_file).exists():
        return None
    return _read_predictions(run_dir / row.predictions_file), row.seconds


def _read_predictions(path: Path) -> list[Prediction]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [Prediction(**json.loads(line)) for line in lines]


def _shared_file(cfg, model_cfg, prompt: str, run_dir: Path) -> Path | None:
    """In a multirun, where the sweep's jobs share their test predictions: <sweep dir>/evaluations/, one file
    per (model, task and split, seed, reasoning length, evaluation settings, prompt). Most methods end on the
    initial prompt at this scale, and a job evaluates it only when no other job of the sweep has."""
    sweep = _sweep_dir(run_dir)
    if sweep is None:
        return None
    key = {
        "model": resume.plain(OmegaConf.structured(model_cfg)),
        "task": resume.plain(cfg.task),
        "seed": cfg.seed,
        "max_reasoning_tokens": cfg.max_reasoning_tokens,
        "evaluation": {k: resume.plain(cfg.evaluation[k]) for k in ("mode", "max_answer_tokens")},
        "prompt": prompt,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return sweep / "evaluations" / f"{model_cfg.name}_{digest}.jsonl"


def _sweep_dir(run_dir: Path) -> Path | None:
    """The directory of the multirun this job belongs to (None outside a multirun)."""
    return run_dir.parent if _hydra_mode() == "MULTIRUN" else None


def _command_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not under Hydra (called from Python): nothing to merge
        return []


def _hydra_mode() -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().mode.name
    except ValueError:
        return None


def _is_search() -> bool:
    """A multirun whose sweeper reads the jobs' return values (Optuna, ...), unlike the basic grid sweeper."""
    if _hydra_mode() != "MULTIRUN":
        return False
    from hydra.core.hydra_config import HydraConfig

    return "BasicSweeper" not in str(HydraConfig.get().sweeper.get("_target_", ""))


def _run_info(cfg: DictConfig, run_dir: Path, start_step: int) -> dict[str, Any]:
    return {
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "run_dir": str(run_dir),
        "model": cfg.model.name,
        "task": cfg.task.name,
        "group": cfg.logger.wandb_group or _sweep_group(),
        "method": cfg.optimizer.name,
        "start_step": start_step,
    }


def _sweep_group() -> str | None:
    """Jobs of one multirun share a W&B group: the sweep directory's name."""
    if _hydra_mode() != "MULTIRUN":
        return None
    from hydra.core.hydra_config import HydraConfig

    return "_".join(Path(HydraConfig.get().sweep.dir).parts[-2:])  # e.g. 2026-11-24_02-27-53


def _evaluate_all(
    cfg, lm, transfer, task, test, optimized, run_dir: Path, callbacks
) -> list[tuple[str, EvaluationResult]]:
    """The final (and initial) prompt on the test split, with the optimizing model and any transfer models
    (loaded one at a time, and only when something is left to evaluate)."""
    prompts = _prompts(cfg, optimized.initial_prompt, optimized.final_prompt)
    results = _evaluate_model(cfg, cfg.model, lm, task, test, prompts, run_dir, callbacks)
    for model_cfg in transfer:
        results += _evaluate_model(cfg, model_cfg, None, task, test, prompts, run_dir, callbacks, required=False)
        gc.collect()  # one transfer model in memory at a time
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return results


def _prompts(cfg, initial: str, final: str) -> dict[str, str]:
    if cfg.evaluation.evaluate_initial and initial != final:
        return {"initial": initial, "final": final}
    return {"final": final}


def _load(cfg, model_cfg: ModelConfig, required: bool) -> LanguageModel | None:
    """The model; a transfer model (not `required`) that cannot load (gated, offline, out of memory) is
    reported and skipped: the rows already computed are kept."""
    try:
        return LanguageModel.from_config(model_cfg, cfg.cache_dir)
    except (OSError, ValueError, ImportError, RuntimeError) as err:
        if required:
            raise
        log.error(
            "could not load %s for transfer evaluation (%s); the other results are kept",
            model_cfg.name,
            str(err).splitlines()[0] if str(err) else type(err).__name__,
        )
        return None


def _evaluate_model(
    cfg, model_cfg, lm, task, test, prompts, run_dir, callbacks, done=None, required=True
) -> list[tuple[str, EvaluationResult]]:
    """Each prompt on `test` with one model. Kept, not evaluated again: `done[kind]` (predictions this run
    saved before, with their seconds) and what another job of the sweep evaluated the same way
    (`_shared_file`). `lm` None: the model loads when something is left; a transfer model (not `required`)
    that cannot load is skipped."""
    out = []
    for kind, prompt in prompts.items():
        kept, seconds = (done or {}).get(kind) or ([], 0.0)
        shared = _shared_file(cfg, model_cfg, prompt, run_dir)
        known = {pred.id: pred for pred in [*(_read_predictions(shared) if shared else []), *kept]}
        missing = [ex for ex in test if ex.id not in known]
        if missing:
            if lm is None:
                lm = _load(cfg, model_cfg, required)
                if lm is None:
                    return []
                if callbacks is not None:
                    lm.on_generation = callbacks.on_generation
            log.info("evaluating the %s prompt on %d test examples with %s", kind, len(missing), lm.name)
            placement = cfg.task.placement
            new = evaluate_prompt(lm, task, missing, prompt, cfg.evaluation, cfg.max_reasoning_tokens, placement)
            known.update((pred.id, pred) for pred in new.predictions)
            seconds += new.seconds
            if shared:
                _write_atomically(shared, list(known.values()))
        res = EvaluationResult(model_cfg.name, prompt, [known[ex.id] for ex in test], seconds)
        res.predictions_file = predictions_file(res.model, kind)
        res.write_predictions(run_dir / res.predictions_file)
        if callbacks is not None:
            callbacks.on_evaluation_end({**res.metrics("test"), "prompt_kind": kind})
        out.append((kind, res))
    if "initial" not in prompts:  # the prompt did not change: the final row stands for both
        out.append(("initial", out[0][1]))
    return out


def _write_atomically(path: Path, predictions: list[Prediction]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    EvaluationResult("", "", predictions).write_predictions(tmp)
    os.replace(tmp, path)


def predictions_file(model: str, kind: str) -> str:
    return f"predictions_{model}_{kind}.jsonl"


def _result(
    cfg, task, optimized: OptimizationResult, evaluations, compute, opt_seconds: float, total_seconds: float
) -> RunResult:
    return RunResult(
        task=task.name,
        model=cfg.model.name,
        optimizer=optimized.method,
        seed=cfg.seed,
        initial_prompt=optimized.initial_prompt,
        final_prompt=optimized.final_prompt,
        train={
            "n": len(task.train),
            "initial_acc": optimized.initial_train_acc,
            "final_acc": optimized.final_train_acc,
        },
        test=_test_rows(evaluations),
        steps=len(optimized.history),
        seconds={
            "optimization": round(optimized.seconds, 2),
            "total": round(total_seconds, 2),
            "until_evaluation": round(opt_seconds, 2),
        },
        compute=compute,
        dev_acc=optimized.final_dev_acc,
        stopped_because=optimized.stopped_because,
        extra=optimized.extra,
    )


def _test_rows(evaluations: list[tuple[str, EvaluationResult]]) -> list[TestRow]:
    return [
        TestRow(
            model=r.model,
            prompt_kind=kind,
            acc=r.accuracy,
            ci_low=r.ci_low,
            ci_high=r.ci_high,
            n=r.n,
            n_unparsed=r.n_unparsed,
            seconds=round(r.seconds, 2),
            predictions_file=r.predictions_file,
        )
        for kind, r in evaluations
    ]

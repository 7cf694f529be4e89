"""One run from a composed config: build the parts, optimize, evaluate, write the run directory.

Hydra-free: `run(cfg)` takes any DictConfig shaped like `RunConfig`, so notebooks and tests can call it.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from greater.callbacks import build_callbacks
from greater.checkpoint import load_checkpoint
from greater.evaluation.evaluator import EvaluationResult, evaluate_prompt
from greater.models.language_model import LanguageModel
from greater.models.registry import load_model_config
from greater.optimizers.base import Budget, OptimizationContext, OptimizationResult
from greater.optimizers.registry import build_optimizer
from greater.results import RunResult, TestRow
from greater.scoring import Scorer
from greater.tasks import build_task

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float:
    """Optimize and evaluate; returns the sweep objective (dev accuracy when there is a dev split, else test)."""
    started = time.perf_counter()
    if cfg.resume:
        cfg = resumed_config(cfg)
    run_dir = Path(cfg.resume or cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    task = build_task(cfg.task, cfg.data_dir, cfg.seed, cfg.cache_dir)  # data problems fail before the model loads
    test = task.test[: cfg.evaluation.n_test] if cfg.evaluation.n_test else task.test
    optimizer = build_optimizer(cfg.optimizer)
    state = load_checkpoint(run_dir, optimizer.name) if cfg.resume else None
    transfer = [load_model_config(name) for name in cfg.evaluation.models]  # unknown names fail before any work
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    lm = LanguageModel.from_config(cfg.model, cfg.cache_dir)
    # Steps are counted from 1; a resumed run's first step is the one after the last saved.
    start_step = len(state.get("history", [])) + 1 if state else 0
    callbacks = build_callbacks(cfg.logger, run_dir, start_step=start_step)
    lm.on_generation = callbacks.on_generation
    try:
        callbacks.on_run_start(_run_info(cfg, run_dir, start_step))
        context = OptimizationContext(
            train=task.train,
            dev=task.dev,
            initial_prompt=cfg.prompt if cfg.prompt is not None else task.initial_prompt,
            placement=cfg.task.placement,
            max_reasoning_tokens=cfg.max_reasoning_tokens,
            scorer=Scorer(lm, task, cfg.task.placement, cfg.max_reasoning_tokens),
            callbacks=callbacks,
            budget=Budget(optimizer.config.budget),
            seed=cfg.seed,
            run_dir=run_dir,
            resume_state=state,
        )
        optimized = optimizer.optimize(lm, task, context)
        compute = {k: round(v, 3) for k, v in sorted(lm.counters.items())}  # optimization only, before the test
        opt_seconds = time.perf_counter() - started
        evaluations = _evaluate_all(cfg, lm, transfer, task, test, optimized, run_dir, callbacks)
        result = _result(cfg, task, optimized, evaluations, compute, opt_seconds, time.perf_counter() - started)
        result.write(run_dir)
        callbacks.on_run_end(result.to_dict())
    except KeyboardInterrupt:
        log.warning("interrupted: the last completed step is saved; continue with resume=%s", run_dir)
        raise
    finally:
        callbacks.close()
    return optimized.final_dev_acc if optimized.final_dev_acc is not None else result.row().acc


def resumed_config(cfg: DictConfig) -> DictConfig:
    """The saved config of the run being resumed, with this command's `key=value` overrides on top
    (so `resume=<dir> optimizer.n_steps=40` extends a run); group choices cannot change mid-run."""
    saved_path = Path(cfg.resume) / "config.yaml"
    if not saved_path.exists():
        raise FileNotFoundError(f"resume={cfg.resume} has no config.yaml; name the run directory of an earlier run")
    saved = OmegaConf.load(saved_path)
    overrides = [o for o in _command_overrides() if not o.startswith(("resume=", "hydra."))]
    groups = [o for o in overrides if "." not in o.split("=", 1)[0]]
    if any(o.split("=", 1)[0] in ("model", "task", "optimizer", "evaluation", "logger") for o in groups):
        raise ValueError(f"resume keeps the saved run's config groups; drop {groups} or start a new run")
    merged = OmegaConf.merge(saved, OmegaConf.from_dotlist(overrides))
    merged.resume = cfg.resume
    return merged


def _command_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not under Hydra (called from Python): nothing to merge
        return []


def _run_info(cfg: DictConfig, run_dir: Path, start_step: int) -> dict[str, Any]:
    return {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "run_dir": str(run_dir),
        "model": cfg.model.name,
        "task": cfg.task.name,
        "group": cfg.logger.wandb_group or _sweep_group(),
        "method": cfg.optimizer.name,
        "start_step": start_step,
    }


def _sweep_group() -> str | None:
    """Jobs of one multirun share a W&B group: the sweep directory's name."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return None
        return "_".join(Path(hydra_cfg.sweep.dir).parts[-2:])  # e.g. 2026-11-24_02-27-53
    except ValueError:
        return None


def _evaluate_all(
    cfg, lm, transfer, task, test, optimized, run_dir: Path, callbacks
) -> list[tuple[str, EvaluationResult]]:
    """The final (and initial) prompt on the test split, with the optimizing model and any transfer models.

    A transfer model that cannot load (gated, offline, out of memory) is reported and skipped: the rows
    already computed are kept."""
    prompts = {"final": optimized.final_prompt}
    if cfg.evaluation.evaluate_initial and optimized.initial_prompt != optimized.final_prompt:
        prompts = {"initial": optimized.initial_prompt, **prompts}
    results = _evaluate_model(cfg, lm, task, test, prompts, run_dir, callbacks)
    for model_cfg in transfer:
        try:
            other = LanguageModel.from_config(model_cfg, cfg.cache_dir)
        except (OSError, ValueError, ImportError, RuntimeError) as err:
            log.error(
                "could not load %s for transfer evaluation (%s); the other results are kept",
                model_cfg.name,
                str(err).splitlines()[0] if str(err) else type(err).__name__,
            )
            continue
        other.on_generation = callbacks.on_generation
        results += _evaluate_model(cfg, other, task, test, prompts, run_dir, callbacks)
        del other  # one transfer model in memory at a time
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return results


def _evaluate_model(cfg, lm, task, test, prompts, run_dir, callbacks) -> list[tuple[str, EvaluationResult]]:
    out = []
    for kind, prompt in prompts.items():
        log.info("evaluating the %s prompt on %d test examples with %s", kind, len(test), lm.name)
        res = evaluate_prompt(lm, task, test, prompt, cfg.evaluation, cfg.max_reasoning_tokens, cfg.task.placement)
        res.predictions_file = predictions_file(lm.name, kind)
        res.write_predictions(run_dir / res.predictions_file)
        callbacks.on_evaluation_end({**res.metrics("test"), "prompt_kind": kind})
        out.append((kind, res))
    if "initial" not in prompts:  # the prompt did not change: the final row stands for both
        out.append(("initial", out[0][1]))
    return out


def predictions_file(model: str, kind: str) -> str:
    return f"predictions_{model}_{kind}.jsonl"


def _result(
    cfg, task, optimized: OptimizationResult, evaluations, compute, opt_seconds: float, total_seconds: float
) -> RunResult:
    rows = [
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
    return RunResult(
        task=task.name,
        model=cfg.model.name,
        optimizer=optimized.method,
        seed=cfg.seed,
        initial_prompt=optimized.initial_prompt,
        final_prompt=optimized.final_prompt,
        train={"n": len(task.train), "initial_acc": optimized.initial_train_acc,
               "final_acc": optimized.final_train_acc},
        test=rows,
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

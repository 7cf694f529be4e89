"""One run from a composed config: prepare, load, optimize, evaluate, write.

Launcher-free: `run(cfg, launch)` takes a composed DictConfig (`greater.compose`, or Hydra's) and a `Launch`
(how the command line started it; `Launch()` from Python), so notebooks and tests call it as the command line
does. `prepare` resolves a resume and validates on the DictConfig, then the run reads only the typed
`RunConfig` it becomes.
The run directory's files are `RunDir`'s, the test evaluation is `plan.evaluate`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from omegaconf import DictConfig

from greater.callbacks import CallbackList, build_callbacks
from greater.config import ModelConfig, RunConfig
from greater.evaluation.context import check_context
from greater.evaluation.metrics import EXACT_MATCH
from greater.evaluation.store import PredictionStore
from greater.lifecycle import resume
from greater.lifecycle.context import context_for
from greater.lifecycle.launch import Launch
from greater.lifecycle.lock import RunLock
from greater.lifecycle.loop import optimize
from greater.lifecycle.plan import EvaluationPlan, evaluate
from greater.lifecycle.results import RunResult, TestRow
from greater.lifecycle.rundir import Checkpoint, RunDir
from greater.lifecycle.stop import RunStopped, raise_if_stopped, stop_on_signals
from greater.lifecycle.validate import validated
from greater.lifecycle.writable import check_outputs
from greater.models.devices import check_device
from greater.models.language_model import LanguageModel
from greater.models.registry import load_model_config
from greater.optimizers.base import OptimizationContext, OptimizationResult, OptimizerConfig
from greater.optimizers.registry import build_optimizer, optimizer_class, optimizer_config
from greater.records import RunInfo
from greater.tasks import Example, Task, build_task
from greater.usage import Ledger
from greater.writers import WriterError, parse_writer, writer_usage
from greater.writers.build import writer_for

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything a run needs but the model, checked: what `run` does before minutes of loading weights."""

    cfg: RunConfig
    run_dir: RunDir
    task: Task
    test: list[Example]
    method: OptimizerConfig  # the optimizer's settings; the optimizer is built once its writer can be
    checkpoint: Checkpoint | None  # the optimizer's saved state, work and time, when resuming
    transfer: list[ModelConfig]
    finished: bool = False  # a finished run: only what its result.json lacks is evaluated


def prepare(cfg: DictConfig, launch: Launch = Launch()) -> Prepared:  # noqa: B008 (a frozen value)
    """Resolve a resume, check every setting that can be checked without the model, load the data."""
    resumed = resume.resolve(cfg, list(launch.overrides), multirun=launch.multirun)
    cfg = validated(resumed.cfg, search=launch.search)  # typed from here on
    check_device(cfg.model.device)  # a device this torch build lacks: one line, before the data loads
    task = build_task(cfg.task, cfg.data_dir, cfg.seed, cfg.cache_dir)  # data problems fail before the model loads
    test = task.test[: cfg.evaluation.n_test] if cfg.evaluation.n_test else task.test
    method = optimizer_config(cfg.optimizer)
    parse_writer(getattr(method, "writer", None))  # a bad writer fails before any model loads
    run_dir = RunDir(resumed.run_dir)
    checkpoint = run_dir.checkpoint(optimizer_class(method.name).name) if resumed.from_checkpoint else None
    stateless = optimizer_class(method.name).stateless  # its search is run again: nothing was saved
    if resumed.from_checkpoint and checkpoint is None and not resumed.finished and not stateless:
        raise FileNotFoundError(
            f"no checkpoint at {run_dir.checkpoint_file}; resume=<dir> must name a run directory that has one"
        )
    transfer = [load_model_config(name) for name in cfg.evaluation.models]  # unknown names fail before any work
    return Prepared(cfg, run_dir, task, test, method, checkpoint, transfer, resumed.finished)


def run(cfg: DictConfig, launch: Launch = Launch()) -> float | None:  # noqa: B008 (a frozen value)
    """Optimize and evaluate; returns the sweep objective: the final prompt's dev accuracy, None without a
    dev split (never test accuracy: a search that tuned on it would report a biased test score)."""
    started = time.perf_counter()
    p = prepare(cfg, launch)
    check_outputs(p.run_dir.path, p.cfg.cache_dir)  # an unwritable folder fails now, not after the model loads
    torch.manual_seed(p.cfg.seed)
    if p.cfg.threads:
        torch.set_num_threads(p.cfg.threads)
    # One live run per directory; SIGTERM/SIGINT stop at the next step boundary, keeping the last checkpoint.
    with RunLock(p.run_dir.mkdir().path), stop_on_signals():
        if p.finished:
            return evaluate_finished(p, launch, started)
        return optimize_and_evaluate(p, launch, started)


def optimize_and_evaluate(p: Prepared, launch: Launch, started: float) -> float | None:
    """Load, optimize (from the checkpoint when resuming), evaluate, write result.json."""
    cfg, run_dir, ckpt = p.cfg, p.run_dir, p.checkpoint
    run_dir.write_config(cfg)
    usage = Ledger()  # the run's: the task model's work and a writer's, counted by role
    if ckpt is not None:  # the work done before the stop counts toward the budget and the reported compute
        usage.add(ckpt.usage)
    lm = LanguageModel.from_config(cfg.model, cfg.cache_dir, usage=usage)
    if getattr(cfg, "generation_cache", False):
        lm.use_generation_cache(cfg.cache_dir, cfg.generation_cache_mb)
    load_seconds = time.perf_counter() - started  # configs, data and the model's weights
    initial = cfg.prompt if cfg.prompt is not None else p.task.initial_prompt
    examples = [*p.task.train, *p.task.dev, *p.test]  # past the model's window: one line, before any generation
    check_context(
        lm, p.task, examples, initial, cfg.task.placement, cfg.max_reasoning_tokens, cfg.evaluation.max_answer_tokens
    )
    start_step = ckpt.steps_done + 1 if ckpt is not None else 0  # steps count from 1
    callbacks = build_callbacks(cfg.logger, run_dir.path, start_step=start_step)
    lm.on_generation = callbacks.on_generation
    writer = writer_for(p.method, lm, cfg.cache_dir)  # None: a method without a writer setting (GReaTer)
    optimizer = build_optimizer(p.method, writer=writer)
    try:
        callbacks.on_run_start(_run_info(cfg, run_dir, start_step, launch))
        # the search, then the one final pick on dev, for every method (greater.lifecycle.loop)
        optimized = optimize(optimizer, lm, p.task, _context(cfg, p, callbacks, lm))
        compute = {k: round(v, 3) for k, v in sorted(usage.flat().items())}  # optimization only, before the test
        opt_seconds = time.perf_counter() - started
        raise_if_stopped()  # a stop asked for during the last step ends here, before the evaluation
        plan = EvaluationPlan.of(cfg, optimized.initial_prompt, optimized.final_prompt, p.test, p.transfer)
        rows = evaluate(plan, p.task, _store(cfg, run_dir, launch), callbacks, lm)
        seconds = {"load": load_seconds, "until_evaluation": opt_seconds, "total": time.perf_counter() - started}
        result = _result(cfg, p.task, optimized, rows, compute, seconds)
        result.writer = writer_usage(writer, compute) if writer is not None else None
        result.write(run_dir.path)
        callbacks.on_run_end(result)
    except WriterError as err:  # every completed step is checkpointed: say how to continue
        saved = run_dir.checkpoint_file.exists()
        then = f"continue with resume={run_dir.path}" if saved else "rerun (no step had completed)"
        raise WriterError(f"{err}; once fixed, {then}") from None
    except RunStopped as stop:
        log.warning("%s", stop.line(run_dir.path))
        raise
    except KeyboardInterrupt:
        log.warning("interrupted: the last completed step is saved; continue with resume=%s", run_dir.path)
        raise
    finally:
        callbacks.close()
    return optimized.dev_acc


def evaluate_finished(p: Prepared, launch: Launch, started: float) -> float | None:
    """A finished run resumed with other evaluation settings: no optimization; the final (and initial) prompt
    is evaluated only on the (model, test example) pairs its result.json lacks, the saved predictions of the
    others are kept (when evaluation.mode and max_answer_tokens are the saved ones), and result.json is
    rewritten with the rows this config asks for. The models load only when something is missing."""
    cfg, run_dir = p.cfg, p.run_dir
    old = RunResult.read(run_dir.result)
    changed = resume.changed_keys(resume.saved_config(run_dir.path).evaluation, cfg.evaluation)
    same_answers = "mode" not in changed and "max_answer_tokens" not in changed
    plan = EvaluationPlan.of(cfg, old.initial_prompt, old.final_prompt, p.test, p.transfer)
    rows = evaluate(plan, p.task, _store(cfg, run_dir, launch, old if same_answers else None), CallbackList())
    run_dir.write_config(cfg)  # after the evaluation: a run stopped during it keeps its saved settings
    seconds = {**old.seconds, "total": round(old.seconds.get("total", 0.0) + time.perf_counter() - started, 2)}
    replace(old, test=rows, seconds=seconds).write(run_dir.path)
    log.info("finished run in %s: not optimized again, only the missing evaluations ran", run_dir.path)
    return old.dev_acc


def prediction_settings(cfg: RunConfig) -> dict[str, Any]:
    """What decides a test prediction besides the model and the prompt: the key of a sweep's shared files."""
    return {
        "task": resume.plain(cfg.task),
        "seed": cfg.seed,
        "max_reasoning_tokens": cfg.max_reasoning_tokens,
        "evaluation": {k: resume.plain(getattr(cfg.evaluation, k)) for k in ("mode", "max_answer_tokens")},
    }


def _store(cfg: RunConfig, run_dir: RunDir, launch: Launch, saved: RunResult | None = None) -> PredictionStore:
    sweep_dir = launch.sweep_dir if launch.multirun else None
    return PredictionStore(run_dir, prediction_settings(cfg), sweep_dir, saved)


def _context(cfg: RunConfig, p: Prepared, callbacks: CallbackList, lm: LanguageModel) -> OptimizationContext:
    ckpt = p.checkpoint
    return context_for(
        lm,
        p.task,
        prompt=cfg.prompt,
        placement=cfg.task.placement,
        max_reasoning_tokens=cfg.max_reasoning_tokens,
        seed=cfg.seed,
        run_dir=p.run_dir.path,
        callbacks=callbacks,
        budget=p.method.budget,
        seconds_before=ckpt.seconds if ckpt is not None else 0.0,  # a resumed run's budget counts them
        resume_state=ckpt.state if ckpt is not None else None,
        evaluation=cfg.evaluation,
    )


def _run_info(cfg: RunConfig, run_dir: RunDir, start_step: int, launch: Launch) -> RunInfo:
    return RunInfo(
        config=resume.plain(cfg),
        run_dir=str(run_dir.path),
        model=cfg.model.name,
        task=cfg.task.name,
        method=cfg.optimizer.name,
        group=cfg.logger.wandb_group or launch.group,
        start_step=start_step,
    )


def _result(
    cfg: RunConfig, task: Task, optimized: OptimizationResult, rows: list[TestRow], compute, seconds: dict[str, float]
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
            "metric": EXACT_MATCH,
        },
        test=rows,
        steps=len(optimized.history),
        seconds={k: round(v, 2) for k, v in {"optimization": optimized.seconds, **seconds}.items()},
        compute=compute,
        dev_acc=optimized.dev_acc,
        dev_metric=optimized.dev_metric,
        stopped_because=optimized.stopped_because,
        extra=optimized.extra,
        split_overlap=task.split_overlap,
        dropped_overlap=task.dropped_overlap,
    )

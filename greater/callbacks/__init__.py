"""Callbacks: console progress, history.jsonl, plots and Weights & Biases, chosen in conf/logger/."""

from __future__ import annotations

from pathlib import Path

from greater.callbacks.base import Callback, CallbackList
from greater.callbacks.console import ConsoleCallback
from greater.callbacks.jsonl import JsonlHistory
from greater.callbacks.plots import PlotCallback
from greater.callbacks.wandb_logger import WandbCallback  # imports wandb itself only when a run logs to it
from greater.config import LoggerConfig

__all__ = ["Callback", "CallbackList", "build_callbacks"]


def build_callbacks(cfg: LoggerConfig, run_dir: Path, start_step: int = 0) -> CallbackList:
    """The callbacks the logger config turns on; `start_step` > 0 when resuming."""
    callbacks: list[Callback] = []
    if cfg.console:
        callbacks.append(ConsoleCallback(progress_bar=cfg.progress_bar))
    if cfg.jsonl:
        callbacks.append(JsonlHistory(run_dir, start_step))
    if cfg.plots:
        callbacks.append(PlotCallback(run_dir))
    if cfg.wandb and cfg.wandb_mode != "disabled":
        # The W&B group comes with the run's info (logger.wandb_group, else the sweep's): decided in one place.
        callbacks.append(
            WandbCallback(run_dir, cfg.wandb_project, cfg.wandb_entity, list(cfg.wandb_tags), cfg.wandb_mode)
        )
    return CallbackList(callbacks)

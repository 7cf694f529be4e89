"""Configs and tasks from Python, without the command line: the same composition and checks as `run.py`.

import greater
cfg = greater.compose(["task=bbh/navigate", "data_dir=../shared/data", "optimizer.n_steps=3"])
accuracy = greater.run(cfg)  # greater.lifecycle.runner.run: writes the run directory like `python run.py`
task = greater.load_task("synthetic/compare_numbers", n_train=8, n_test=20)
lm = greater.load_model("smollm2-135m")  # greater.models.language_model.load_model
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from greater.config import DEFAULT_CACHE_DIR, conf_dir
from greater.config_store import register_configs
from greater.tasks import build_task, task_config

if TYPE_CHECKING:
    from greater.tasks.base import Task


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """The config `python run.py <overrides>` would run, checked against the schemas.

    Outside Hydra there is no run directory yet: unless `output_dir=...` is among the overrides it
    becomes the one `hydra.run.dir` in conf/config.yaml names, as on the command line."""
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    run_dir = _resolved_run_dir(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # a run from Python is not a Hydra job
        if not any(o.startswith("output_dir=") for o in overrides):
            cfg.output_dir = run_dir
    return cfg


def _resolved_run_dir(cfg: DictConfig) -> str:
    """`hydra.run.dir` resolved (it reads `hydra:` values), leaving no Hydra state behind."""
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(cfg)
    try:
        return str(cfg.hydra.run.dir)
    finally:
        hydra_config.cfg = previous


def load_task(
    name: str, data_dir: str | None = None, seed: int = 0, cache_dir: str = DEFAULT_CACHE_DIR, **fields: Any
) -> Task:
    """A task by its config name in conf/task/, split by `seed`; `fields` override its config
    (`n_train=10`, `split="paper"`, ...) and are checked against the schema like command-line overrides."""
    return build_task(task_config(name, **fields), data_dir, seed, cache_dir)

"""Optimize a prompt with GReaTer and evaluate it: `python run.py task=bbh/causal_judgement model=gemma2-9b`."""

import hydra
from omegaconf import DictConfig

from greater.cli import configure_errors
from greater.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    with configure_errors():
        from greater.runner import run  # torch and transformers load only when a job runs, not for --cfg/--help

        return run(cfg)


if __name__ == "__main__":
    main()

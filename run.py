"""Optimize a prompt with GReaTer and evaluate it: `python run.py task=bbh/causal_judgement model=gemma2-9b`."""

import hydra
from omegaconf import DictConfig

from greater.cli import configure_errors
from greater.config import register_configs
from greater.runner import run

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    with configure_errors():
        return run(cfg)


if __name__ == "__main__":
    main()

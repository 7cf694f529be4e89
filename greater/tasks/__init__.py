"""Tasks: examples, splits and answer handling, built from a `TaskConfig`."""

from __future__ import annotations

import logging
from dataclasses import replace

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from greater.config import DEFAULT_CACHE_DIR, AnswerType, TaskConfig, conf_dir
from greater.tasks.answers import canonical_gold, normalizer_for, parse_choice, parser_for
from greater.tasks.base import Example, Task
from greater.tasks.loaders import Pools, load_bbh, load_custom, load_folio, load_gsm8k
from greater.tasks.reference_formats import reference_format, task_key
from greater.tasks.splits import TaskError, overlapping, split
from greater.tasks.synthetic import load_synthetic

__all__ = ["Example", "Task", "TaskError", "build_task", "task_config"]
log = logging.getLogger(__name__)


def task_config(name: str, **fields) -> TaskConfig:
    """A task's config by its name in conf/task/ (e.g. "bbh/navigate"), with its shared base applied and
    `fields` on top, checked against the schema; no run config is composed."""
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        node = compose(overrides=[f"+task={name}"]).task
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), node, fields))


def load_pools(cfg: TaskConfig, data_dir: str | None, cache_dir: str, seed: int = 0) -> Pools:
    if cfg.loader == "bbh":
        # the file is extra.bbh_task when set (a renamed task), else the name after "bbh/"
        bbh_task = (cfg.extra or {}).get("bbh_task") or cfg.name.split("/", 1)[-1]
        return load_bbh(str(bbh_task), data_dir, cache_dir, cfg.skip_bad_rows)
    if cfg.loader == "gsm8k":
        return load_gsm8k(data_dir, cache_dir, cfg.skip_bad_rows)
    if cfg.loader == "folio":
        return load_folio(data_dir, cache_dir, cfg.skip_bad_rows)
    if cfg.loader == "custom":
        return load_custom(cfg.file, cfg.question_field, cfg.answer_field, cfg.hub_split, cache_dir, cfg.skip_bad_rows)
    if cfg.loader == "synthetic":
        return load_synthetic(cfg, seed), None
    raise TaskError(f"unknown task.loader '{cfg.loader}'; use bbh, gsm8k, folio, custom or synthetic")


def build_task(cfg: TaskConfig, data_dir: str | None, seed: int, cache_dir: str = DEFAULT_CACHE_DIR) -> Task:
    """Load, split and equip a task with its answer parser; errors are one-line `TaskError`s."""
    pool, test_pool = load_pools(cfg, data_dir, cache_dir, seed)
    options = list(cfg.options) if cfg.options else _closed_options(cfg.answer_type, pool)
    try:
        parse = parser_for(cfg.answer_type, options)
    except ValueError as err:
        raise TaskError(str(err)) from None
    normalize = normalizer_for(cfg.answer_type)
    # The reference trains on the gold as its file spells it (sports_understanding's "yes"); else the option's.
    spelling = None if cfg.answer_format == "reference" else options
    pool, misfit = _answerable(_canonical(pool, spelling, normalize), parse, normalize)
    if test_pool is not None:
        test_pool, misfit_test = _answerable(_canonical(test_pool, spelling, normalize), parse, normalize)
        misfit += misfit_test
    if misfit and cfg.loader == "custom" and not cfg.skip_bad_rows:  # the user's own file: theirs to fix
        raise TaskError(misfit_line(misfit, cfg))
    try:
        parts = split(pool, test_pool, cfg.n_train, cfg.n_dev, cfg.n_test, cfg.split, seed)
    except TaskError:
        if misfit and not cfg.skip_bad_rows:  # "fewer examples than asked for" has this cause: name it
            raise TaskError(misfit_line(misfit, cfg)) from None
        raise
    if misfit:  # a benchmark's known errata (movie_recommendation's one free-text target), or skip_bad_rows
        log.warning(misfit_line(misfit, cfg, dropped=True))
    test, overlap, dropped = _hygiene(parts.test, parts.train + parts.dev, cfg)
    task = Task(
        name=cfg.name,
        train=parts.train,
        dev=parts.dev,
        test=test,
        answer_type=cfg.answer_type,
        initial_prompt=cfg.initial_prompt,
        extractor=cfg.extractor,
        question_template=cfg.question_template,
        options=options,
        parse=parse,
        normalize=normalize,
        split_overlap=overlap,
        dropped_overlap=dropped,
    )
    return _in_answer_format(task, cfg)


def _hygiene(test: list[Example], seen: list[Example], cfg: TaskConfig) -> tuple[list[Example], int, int]:
    """(the test split, its questions also in train or dev, the number dropped): task.dedupe drops them, else
    the run warns and reports them."""
    found = overlapping(test, seen)
    if not found:
        return test, 0, 0
    first = found[0].id or found[0].question[:60]
    if cfg.dedupe:
        ids = {id(ex) for ex in found}
        log.info("%s: dropped %d test question(s) also in train or dev (first: %s)", cfg.name, len(found), first)
        return [ex for ex in test if id(ex) not in ids], 0, len(found)
    log.warning(
        "%s: %d test question(s) also appear in train or dev (first: %s); task.dedupe=true drops them",
        cfg.name,
        len(found),
        first,
    )
    return test, len(found), 0


def _in_answer_format(task: Task, cfg: TaskConfig) -> Task:
    """task.answer_format=reference: the authors' extractors and answer forms (experiment=paper_*)."""
    answer_format = cfg.answer_format
    if answer_format == "default":
        return task
    if answer_format != "reference":
        raise TaskError(f"unknown task.answer_format '{answer_format}'; use default or reference")
    try:
        return reference_format(task, task_key(cfg.loader, cfg.name, cfg.extra), str(cfg.reference_style))
    except ValueError as err:
        raise TaskError(str(err)) from None


def _closed_options(answer_type: str, pool: list[Example]) -> list[str] | None:
    """For closed answer sets, the distinct gold answers (e.g. "(A)".."(E)" for a five-way choice)."""
    if answer_type in ("integer", "text"):
        return None
    if answer_type == "choice":  # only well-formed letters: a stray free-text gold is a data error
        return sorted({ex.answer for ex in pool if parse_choice(ex.answer) == ex.answer})
    return sorted({ex.answer for ex in pool})


def _canonical(examples: list[Example], options: list[str] | None, normalize) -> list[Example]:
    """Gold answers in their option's spelling: sports_understanding's "yes" becomes "Yes", like the others."""
    if not options:
        return examples
    return [replace(ex, answer=canonical_gold(ex.answer, options, normalize)) for ex in examples]


def _answerable(examples: list[Example], parse, normalize) -> tuple[list[Example], list[Example]]:
    """(kept, misfit): the examples whose gold answer reads as an answer of the task's type, and the others
    (a data error, such as the one free-text target among movie_recommendation's choices)."""
    kept, misfit = [], []
    for ex in examples:
        parsed = parse(" " + ex.answer)
        (kept if parsed is not None and normalize(parsed) == normalize(ex.answer) else misfit).append(ex)
    return kept, misfit


def misfit_line(misfit: list[Example], cfg: TaskConfig, dropped: bool = False) -> str:
    """One line on the rows whose answer is not of task.answer_type: how many, and the first with its line;
    the error's (`dropped` False) says how to fix or skip them."""
    first = misfit[0]
    where = first.where or first.id or first.question[:60]
    answer_type = f"task.answer_type={getattr(cfg.answer_type, 'value', cfg.answer_type)}"
    if dropped:
        return (
            f"{cfg.name}: dropped {len(misfit)} example(s) whose answer is not of {answer_type}; first: {where}: "
            + repr(first.answer)
        )
    more = f" (and {len(misfit) - 1} more such row(s))" if len(misfit) > 1 else ""
    types = ", ".join(t.value for t in AnswerType)
    return (
        f"{where}: the answer {first.answer!r} is not of {answer_type}{more}; fix the answers, or set "
        f"task.answer_type ({types}; with label, task.options) to what they are, or set task.skip_bad_rows=true "
        "to drop such rows"
    )

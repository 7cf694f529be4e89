"""Reading examples: the benchmark files in a data directory (the formats of the public releases), the
Hugging Face hub through `datasets` when no directory is given, or a user's own JSONL / CSV file."""

from __future__ import annotations

import csv
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from greater.tasks.answers import normalize_number
from greater.tasks.base import Example
from greater.tasks.splits import TaskError

log = logging.getLogger(__name__)
HUB = {
    "bbh": ("lukaemon/bbh", None),  # the task name is the dataset config
    "gsm8k": ("openai/gsm8k", "main"),
    "folio": ("yale-nlp/FOLIO", None),
}
LOCAL_FILES = {  # what data_dir must hold, named in the error when the hub is out of reach
    "bbh": "bbh/<task>.json",
    "gsm8k": "gsm8k/train.jsonl and gsm8k/test.jsonl",
    "folio": "folio/folio-train.jsonl and folio/folio-validation.jsonl",
}
Pools = tuple[list[Example], list[Example] | None]  # (pool for train/dev/test, separate test pool or None)


def _data_file(data_dir: str, *parts: str) -> Path:
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise TaskError(
            f"data directory '{data_dir}' does not exist; set data_dir= to the folder holding "
            "bbh/, gsm8k/ and folio/ (e.g. data_dir=../shared/data)"
        )
    path = root.joinpath(*parts)
    if not path.exists():
        raise TaskError(f"data directory '{data_dir}' has no {'/'.join(parts)}; put the file there or fix data_dir")
    return path


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = {}  # reported as a bad row by the caller
        rows.append((number, row if isinstance(row, dict) else {}))
    return rows


def _hub(source: str, config: str | None, split: str, cache_dir: str) -> list[dict[str, Any]]:
    name, default_config = HUB.get(source, (source, None))
    cache = datasets_cache(cache_dir)
    # Offline and nothing cached: fail now rather than after datasets' ~25 s of connection retries.
    reason = None if _hub_reachable() or _cached(cache, name) else "no network and not cached"
    if reason is None:
        try:
            import datasets

            return list(datasets.load_dataset(name, config or default_config, split=split, cache_dir=str(cache)))
        except Exception as err:
            reason = type(err).__name__
    raise TaskError(f"could not load '{name}' from the Hugging Face hub ({reason}); {_local_fix(source)}")


def datasets_cache(cache_dir: str) -> Path:
    """Where downloaded data sets go: $HF_DATASETS_CACHE, else $HF_HOME/datasets (as `datasets` itself
    would), else <cache_dir>/datasets."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "datasets"
    return Path(cache_dir).expanduser() / "datasets"


def _local_fix(source: str) -> str:
    if source in LOCAL_FILES:
        return f"put {LOCAL_FILES[source]} in a folder and set data_dir= to it (e.g. data_dir=../shared/data)"
    return "download it as a .jsonl or .csv file and set task.file= to its path"


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached(cache: Path, name: str) -> bool:
    # datasets caches "owner/name" as a folder "owner___name" (lower-cased in recent releases).
    folder = name.replace("/", "___")
    return cache.is_dir() and any(p.name.lower() == folder.lower() for p in cache.iterdir())


# ---- BBH ------------------------------------------------------------------------------------------
def load_bbh(task: str, data_dir: str | None, cache_dir: str) -> Pools:
    if data_dir:
        payload = json.loads(_data_file(data_dir, "bbh", f"{task}.json").read_text(encoding="utf-8"))
        rows = payload["examples"]
    else:
        rows = _hub("bbh", task, "test", cache_dir)
    return [Example(r["input"], r["target"].strip(), id=f"{task}#{i}") for i, r in enumerate(rows)], None


# ---- GSM8K ----------------------------------------------------------------------------------------
def gsm8k_answer(solution: str) -> str:
    """The number after '####' on the solution's last line."""
    if "####" not in solution:
        raise ValueError("no '####' in a GSM8K answer")
    return normalize_number(solution.rsplit("####", 1)[1])


def load_gsm8k(data_dir: str | None, cache_dir: str) -> Pools:
    def convert(rows, split):
        return [Example(r["question"], gsm8k_answer(r["answer"]), id=f"gsm8k-{split}#{i}") for i, r in enumerate(rows)]

    train, test = _train_and_test_rows("gsm8k", ("train.jsonl", "test.jsonl"), ("train", "test"), data_dir, cache_dir)
    return convert(train, "train"), convert(test, "test")


# ---- FOLIO ----------------------------------------------------------------------------------------
def folio_question(premises: list[str] | str, conclusion: str) -> str:
    if isinstance(premises, str):
        premises = [p for p in premises.splitlines() if p.strip()]
    listed = "\n".join(f"- {p.strip()}" for p in premises)
    return (
        f"Premises:\n{listed}\nConclusion: {conclusion.strip()}\n"
        "Based on the premises, is the conclusion True, False, or Uncertain?"
    )


def load_folio(data_dir: str | None, cache_dir: str) -> Pools:
    def convert(rows, split):
        # Releases differ: v0.0 says "Unknown", later ones "Uncertain" (the paper's word); keep one name.
        labels = {"Unknown": "Uncertain"}
        return [
            Example(
                folio_question(r["premises"], r["conclusion"]),
                labels.get(str(r["label"]).strip(), str(r["label"]).strip()),
                id=f"folio-{split}#{i}",
            )
            for i, r in enumerate(rows)
        ]

    files = ("folio-train.jsonl", "folio-validation.jsonl")
    train, test = _train_and_test_rows("folio", files, ("train", "validation"), data_dir, cache_dir)
    return convert(train, "train"), convert(test, "validation")


def _train_and_test_rows(
    source: str, files: tuple[str, str], hub_splits: tuple[str, str], data_dir: str | None, cache_dir: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Raw rows of a benchmark shipped as a train file and a test file: local JSONL, else the hub."""
    if data_dir:
        return tuple([r for _, r in _read_jsonl(_data_file(data_dir, source, name))] for name in files)
    return tuple(_hub(source, None, split, cache_dir) for split in hub_splits)


# ---- a user's own data ----------------------------------------------------------------------------
FILE_TYPES = (".jsonl", ".csv", ".tsv")


def load_custom(file: str | None, question_field: str, answer_field: str, hub_split: str, cache_dir: str) -> Pools:
    """JSONL, CSV or TSV (by extension), else a hub dataset id. Bad rows are skipped and reported by line."""
    if not file:
        raise TaskError("task=custom needs task.file: a .jsonl or .csv path, or a hub dataset id")
    rows = _custom_rows(file, hub_split, cache_dir)
    examples, bad = [], []
    for number, row in rows:
        question, answer = _field(row, question_field), _field(row, answer_field)
        if not question or not answer:
            bad.append(number)
            continue
        examples.append(Example(question, answer, id=f"{Path(file).name}:{number}"))
    if bad:
        shown = ", ".join(map(str, bad[:20])) + (" ..." if len(bad) > 20 else "")
        log.warning(
            "%s: skipped %d row(s) with an empty or missing '%s' or '%s' (lines %s)",
            file,
            len(bad),
            question_field,
            answer_field,
            shown,
        )
    if not examples:
        raise TaskError(_no_usable_row(file, rows, question_field, answer_field))
    return examples, None


def _custom_rows(file: str, hub_split: str, cache_dir: str) -> list[tuple[int, dict[str, Any]]]:
    path = Path(file).expanduser()
    if path.suffix not in FILE_TYPES and not path.exists():  # "owner/name": a hub dataset id
        return [(i + 1, r) for i, r in enumerate(_hub(file, None, hub_split, cache_dir))]
    if not path.is_file():
        raise TaskError(f"task.file '{file}' does not exist; give the path of your .jsonl or .csv file")
    if path.suffix == ".jsonl":
        return _read_jsonl(path)
    if path.suffix in (".csv", ".tsv"):
        return _read_csv(path, delimiter="\t" if path.suffix == ".tsv" else ",")
    raise TaskError(f"task.file '{file}' is not a .jsonl, .csv or .tsv file; convert it to one of those")


def _field(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value).strip()  # 0 and False are answers, None is not


def _no_usable_row(file: str, rows: list[tuple[int, dict[str, Any]]], question_field: str, answer_field: str) -> str:
    if not rows:
        return f"task.file '{file}' has no usable row (it holds no data rows); add question/answer rows"
    columns = sorted({key for _, row in rows for key in row if isinstance(key, str)})  # csv: extra cells key None
    return (
        f"task.file '{file}' has no usable row: none has both '{question_field}' and '{answer_field}' "
        f"(columns found: {', '.join(columns) or 'none'}); set task.question_field / task.answer_field"
    )


def _read_csv(path: Path, delimiter: str = ",") -> list[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        return [(reader.line_num, row) for row in reader]  # line_num: the file line the row ended on

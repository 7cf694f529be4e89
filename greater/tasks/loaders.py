"""Reading examples: the benchmark files in a data directory (the formats of the public releases), the
Hugging Face hub through `datasets` when no directory is given, or a user's own JSONL / CSV file."""

from __future__ import annotations

import csv
import json
import logging
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
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError:
            rows.append((number, {}))  # reported as a bad row by the caller
    return rows


def _hub(source: str, config: str | None, split: str, cache_dir: str) -> list[dict[str, Any]]:
    name, default_config = HUB.get(source, (source, None))
    try:
        import datasets

        data = datasets.load_dataset(
            name, config or default_config, split=split, cache_dir=str(Path(cache_dir).expanduser() / "datasets")
        )
    except Exception as err:
        raise TaskError(
            f"could not load '{name}' from the Hugging Face hub ({type(err).__name__}); download the "
            f"files and set data_dir= to their folder (see README, 'Data')"
        ) from None
    return list(data)


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

    if data_dir:
        train = [r for _, r in _read_jsonl(_data_file(data_dir, "gsm8k", "train.jsonl"))]
        test = [r for _, r in _read_jsonl(_data_file(data_dir, "gsm8k", "test.jsonl"))]
    else:
        train, test = (_hub("gsm8k", None, s, cache_dir) for s in ("train", "test"))
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

    if data_dir:
        train = [r for _, r in _read_jsonl(_data_file(data_dir, "folio", "folio-train.jsonl"))]
        test = [r for _, r in _read_jsonl(_data_file(data_dir, "folio", "folio-validation.jsonl"))]
    else:
        train, test = (_hub("folio", None, s, cache_dir) for s in ("train", "validation"))
    return convert(train, "train"), convert(test, "validation")


# ---- a user's own data ----------------------------------------------------------------------------
def load_custom(file: str | None, question_field: str, answer_field: str, hub_split: str, cache_dir: str) -> Pools:
    """JSONL or CSV (by extension), else a hub dataset id. Bad rows are skipped and reported by line."""
    if not file:
        raise TaskError("task=custom needs task.file: a .jsonl or .csv path, or a hub dataset id")
    path = Path(file).expanduser()
    if path.suffix in (".jsonl", ".csv"):
        if not path.exists():
            raise TaskError(f"task.file '{file}' does not exist; give the path of your .jsonl or .csv file")
        rows = _read_jsonl(path) if path.suffix == ".jsonl" else _read_csv(path)
    else:
        rows = [(i + 1, r) for i, r in enumerate(_hub(file, None, hub_split, cache_dir))]
    examples, bad = [], []
    for number, row in rows:
        question, answer = str(row.get(question_field) or "").strip(), str(row.get(answer_field) or "").strip()
        if not question or not answer:
            bad.append(number)
            continue
        examples.append(Example(question, answer, id=f"{path.name}:{number}"))
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
        raise TaskError(
            f"'{file}' has no usable row: every row lacks '{question_field}' or '{answer_field}'; "
            "set task.question_field / task.answer_field to your column names"
        )
    return examples, None


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return [(reader.line_num, row) for row in reader]  # line_num: the file line the row ended on

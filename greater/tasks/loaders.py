"""Reading examples: the benchmark files in a data directory (the formats of the public releases), the
Hugging Face hub through `datasets` when no directory is given, or a user's own JSONL / CSV file."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from greater.models.hub import hub_reachable as _hub_reachable
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
Rows = list[tuple[int, dict[str, Any]]]  # (line or row number, the row), numbered as the user would look it up
SKIP_HINT = "or set task.skip_bad_rows=true to skip unreadable rows"


class BadRows:
    """The rows of one source that could not be read. By default any is an error naming the source and the
    first bad line; with `skip` they are dropped and one warning says how many and which."""

    def __init__(self, source: str, skip: bool, unit: str = "line") -> None:
        self.source, self.skip, self.unit = source, skip, unit
        self.rows: list[tuple[int, str]] = []  # (number, why)

    def add(self, number: int, why: str) -> None:
        self.rows.append((number, why))

    def place(self, number: int) -> str:
        """Where row `number` is, as the user would look it up: "<file> line 7"."""
        return f"{self.source} {self.unit} {number}"

    def check(self) -> None:
        """Raise (default) or warn about the bad rows collected so far."""
        if not self.rows:
            return
        self.rows.sort()
        number, why = self.rows[0]
        more = f" (and {len(self.rows) - 1} more bad row(s))" if len(self.rows) > 1 else ""
        if not self.skip:
            raise TaskError(
                f"{self.source} {self.unit} {number}: {why}{more}; fix or delete that {self.unit}, {SKIP_HINT}"
            )
        shown = ", ".join(str(n) for n, _ in self.rows[:20]) + (" ..." if len(self.rows) > 20 else "")
        log.warning(
            "%s: skipped %d row(s) that could not be read (task.skip_bad_rows=true), %ss %s; first: %s %d: %s",
            self.source,
            len(self.rows),
            self.unit,
            shown,
            self.unit,
            number,
            why,
        )


def _why(err: Exception) -> str:
    """What is wrong with a row, from the error its conversion raised."""
    if isinstance(err, KeyError):
        return f"no '{err.args[0]}' field"
    if isinstance(err, (TypeError, AttributeError)):
        return f"a field has the wrong type ({err})"
    return str(err)


def _json_problem(err: json.JSONDecodeError) -> str:
    at = "" if err.msg.endswith(" at") else " at"  # "Unterminated string starting at" already ends so
    return f"not valid JSON ({err.msg}{at} column {err.colno})"


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def _convert(rows: Rows, make: Callable[[int, dict[str, Any]], Example], bad: BadRows) -> list[Example]:
    """`make` each row into an Example; a row it cannot read goes to `bad` (then `bad.check()`)."""
    out = []
    for number, row in rows:
        try:
            out.append(replace(make(number, row), where=bad.place(number)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            bad.add(number, _why(err))
    bad.check()
    return out


def _data_file(data_dir: str, *parts: str) -> Path:
    root = Path(data_dir).expanduser()
    if root.is_file():
        raise TaskError(
            f"data_dir={data_dir} is a file, not a folder; set data_dir= to the folder holding "
            "bbh/, gsm8k/ and folio/ (e.g. data_dir=../shared/data)"
        )
    if not root.is_dir():
        raise TaskError(
            f"data directory '{data_dir}' does not exist; set data_dir= to the folder holding "
            "bbh/, gsm8k/ and folio/ (e.g. data_dir=../shared/data)"
        )
    path = root.joinpath(*parts)
    if not path.exists():
        raise TaskError(f"data directory '{data_dir}' has no {'/'.join(parts)}; put the file there or fix data_dir")
    if not path.is_file():
        raise TaskError(f"{path} is a directory, not a data file; put the file {'/'.join(parts)} there")
    return path


def _text(path: Path) -> str:
    """The file's text: UTF-8 with or without a byte-order mark (spreadsheet programs write one), with every
    line ending (LF, CRLF, CR) read as LF."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise TaskError(f"{path} line {line}: not UTF-8 text ({err.reason}); save the file as UTF-8") from None
    except OSError as err:
        raise TaskError(f"{path}: cannot be read ({err.strerror}); check the path and its permissions") from None


def _read_jsonl(path: Path, bad: BadRows) -> Rows:
    """The JSON objects of a JSONL file by line number; a line that is not one goes to `bad`."""
    rows = []
    # split at LF only: JSON strings may hold U+2028 and the like, which str.splitlines() would split at
    for number, line in enumerate(_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            bad.add(number, _json_problem(err))
            continue
        if not isinstance(row, dict):
            bad.add(number, f"a JSON {type(row).__name__}, not an object with named fields")
            continue
        rows.append((number, row))
    return rows


def _hub(source: str, config: str | None, split: str, cache_dir: str) -> list[dict[str, Any]]:
    name, default_config = HUB.get(source, (source, None))
    cache = datasets_cache(cache_dir)
    # Offline and nothing cached: fail now rather than after datasets' ~25 s of connection retries.
    reason = None if _cached(cache, name) or _hub_reachable() else "no network and not cached"
    if reason is None:
        try:
            import datasets  # only without data_dir: the hub loader, seconds to import

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


def _cached(cache: Path, name: str) -> bool:
    # datasets caches "owner/name" as a folder "owner___name" (lower-cased in recent releases).
    folder = name.replace("/", "___")
    return cache.is_dir() and any(p.name.lower() == folder.lower() for p in cache.iterdir())


# ---- BBH ------------------------------------------------------------------------------------------
def load_bbh(task: str, data_dir: str | None, cache_dir: str, skip_bad_rows: bool = False) -> Pools:
    if data_dir:
        path = _data_file(data_dir, "bbh", f"{task}.json")
        rows, bad = _bbh_rows(path), BadRows(str(path), skip_bad_rows, unit="example")
    else:
        rows = _numbered(_hub("bbh", task, "test", cache_dir))
        bad = BadRows(f"hub dataset '{HUB['bbh'][0]}' ({task}, test)", skip_bad_rows, unit="row")
    # ids count from 0 over the file's examples, as they always have (a skipped one keeps the others' ids)
    return _convert(rows, lambda n, r: Example(r["input"], r["target"].strip(), id=f"{task}#{n - 1}"), bad), None


def _bbh_rows(path: Path) -> Rows:
    """A BBH file: one JSON object whose "examples" list holds {"input", "target"}, numbered from 1."""
    try:
        payload = json.loads(_text(path))
    except json.JSONDecodeError as err:
        raise TaskError(
            f"{path} line {err.lineno}: {_json_problem(err)}; the file is damaged: "
            "download it again (BIG-Bench-Hard's bbh/<task>.json)"
        ) from None
    examples = payload.get("examples") if isinstance(payload, dict) else None
    if not isinstance(examples, list):
        raise TaskError(f'{path} has no "examples" list; a BBH file is {{"examples": [{{"input", "target"}}]}}')
    return [(i, row if isinstance(row, dict) else {}) for i, row in enumerate(examples, start=1)]


def _numbered(rows: list[dict[str, Any]]) -> Rows:
    return [(i, row) for i, row in enumerate(rows, start=1)]


# ---- GSM8K ----------------------------------------------------------------------------------------
def gsm8k_answer(solution: str) -> str:
    """The number after '####' on the solution's last line."""
    if "####" not in solution:
        raise ValueError("no '####' in a GSM8K answer")
    return normalize_number(solution.rsplit("####", 1)[1])


def load_gsm8k(data_dir: str | None, cache_dir: str, skip_bad_rows: bool = False) -> Pools:
    def make(split):
        return lambda i, r: Example(r["question"], gsm8k_answer(r["answer"]), id=f"gsm8k-{split}#{i}")

    files, splits = ("train.jsonl", "test.jsonl"), ("train", "test")
    train, test = _train_and_test_rows("gsm8k", files, splits, data_dir, cache_dir, skip_bad_rows)
    return _convert(train[0], make("train"), train[1]), _convert(test[0], make("test"), test[1])


# ---- FOLIO ----------------------------------------------------------------------------------------
def folio_question(premises: list[str] | str, conclusion: str) -> str:
    if isinstance(premises, str):
        premises = [p for p in premises.splitlines() if p.strip()]
    listed = "\n".join(f"- {p.strip()}" for p in premises)
    return (
        f"Premises:\n{listed}\nConclusion: {conclusion.strip()}\n"
        "Based on the premises, is the conclusion True, False, or Uncertain?"
    )


def load_folio(data_dir: str | None, cache_dir: str, skip_bad_rows: bool = False) -> Pools:
    # Releases differ: v0.0 says "Unknown", later ones "Uncertain" (the paper's word); keep one name.
    labels = {"Unknown": "Uncertain"}

    def make(split):
        def example(i: int, r: dict[str, Any]) -> Example:
            label = str(r["label"]).strip()
            return Example(
                folio_question(r["premises"], r["conclusion"]), labels.get(label, label), id=f"folio-{split}#{i}"
            )

        return example

    files, splits = ("folio-train.jsonl", "folio-validation.jsonl"), ("train", "validation")
    train, test = _train_and_test_rows("folio", files, splits, data_dir, cache_dir, skip_bad_rows)
    return _convert(train[0], make("train"), train[1]), _convert(test[0], make("validation"), test[1])


def _train_and_test_rows(
    source: str, files: tuple[str, str], hub_splits: tuple[str, str], data_dir: str | None, cache_dir: str, skip: bool
) -> tuple[tuple[Rows, BadRows], tuple[Rows, BadRows]]:
    """Raw rows of a benchmark shipped as a train file and a test file (local JSONL, else the hub), each with
    the bad rows of its source. Rows are numbered from 0 (ids as before); a file's bad rows by line."""
    out = []
    for name, split in zip(files, hub_splits, strict=True):
        if data_dir:
            path = _data_file(data_dir, source, name)
            bad = BadRows(str(path), skip)
            rows = _read_jsonl(path, bad)
        else:
            bad = BadRows(f"hub dataset '{HUB[source][0]}' ({split})", skip, unit="row")
            rows = _numbered(_hub(source, None, split, cache_dir))
        out.append(([(i, row) for i, (_, row) in enumerate(rows)], _LineNumbers(bad, rows)))
    return out[0], out[1]


class _LineNumbers(BadRows):
    """A BadRows that is given a row's index and reports the line the row came from."""

    def __init__(self, bad: BadRows, rows: Rows) -> None:
        super().__init__(bad.source, bad.skip, bad.unit)
        self.rows, self._lines = bad.rows, [number for number, _ in rows]

    def add(self, number: int, why: str) -> None:
        super().add(self._lines[number], why)

    def place(self, number: int) -> str:
        return super().place(self._lines[number])


# ---- a user's own data ----------------------------------------------------------------------------
FILE_TYPES = (".jsonl", ".csv", ".tsv")


def load_custom(
    file: str | None,
    question_field: str,
    answer_field: str,
    hub_split: str,
    cache_dir: str,
    skip_bad_rows: bool = False,
) -> Pools:
    """JSONL, CSV or TSV (by extension), else a hub dataset id. A row that cannot be read (not JSON, the wrong
    number of cells, an empty question or answer) is an error naming its line, or skipped and reported."""
    if not file:
        raise TaskError("task=custom needs task.file: a .jsonl or .csv path, or a hub dataset id")
    bad = BadRows(file, skip_bad_rows)
    rows = _custom_rows(file, hub_split, cache_dir, bad)
    if not any(_field(r, question_field) and _field(r, answer_field) for _, r in rows):
        raise TaskError(_no_usable_row(file, rows, question_field, answer_field))  # a naming problem, not a row's

    def make(number: int, row: dict[str, Any]) -> Example:
        question, answer = _field(row, question_field), _field(row, answer_field)
        if not question or not answer:
            raise ValueError(f"empty or missing '{question_field if not question else answer_field}'")
        return Example(question, answer, id=f"{Path(file).name}:{number}")

    return _convert(rows, make, bad), None


def _custom_rows(file: str, hub_split: str, cache_dir: str, bad: BadRows) -> Rows:
    path = Path(file).expanduser()
    if path.suffix not in FILE_TYPES and not path.exists():  # "owner/name": a hub dataset id
        bad.unit = "row"
        return _numbered(_hub(file, None, hub_split, cache_dir))
    if path.is_dir():
        raise TaskError(f"task.file '{file}' is a directory; give the path of a .jsonl or .csv file in it")
    if not path.is_file():
        raise TaskError(f"task.file '{file}' does not exist; give the path of your .jsonl or .csv file")
    if path.suffix == ".jsonl":
        return _read_jsonl(path, bad)
    if path.suffix in (".csv", ".tsv"):
        return _read_csv(path, bad, delimiter="\t" if path.suffix == ".tsv" else ",")
    raise TaskError(f"task.file '{file}' is not a .jsonl, .csv or .tsv file; convert it to one of those")


def _field(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value).strip()  # 0 and False are answers, None is not


def _no_usable_row(file: str, rows: Rows, question_field: str, answer_field: str) -> str:
    if not rows:
        return f"task.file '{file}' has no usable row (it holds no data rows); add question/answer rows"
    columns = sorted({key for _, row in rows for key in row if isinstance(key, str)})  # csv: extra cells key None
    return (
        f"task.file '{file}' has no usable row: none has both '{question_field}' and '{answer_field}' "
        f"(columns found: {', '.join(columns) or 'none'}); set task.question_field / task.answer_field"
    )


def _read_csv(path: Path, bad: BadRows, delimiter: str = ",") -> Rows:
    """Rows by the file line they end on; a row with more or fewer cells than the header goes to `bad`."""
    rows = []
    # lines split at LF only (as in _read_jsonl): a cell may hold U+2028 and the like
    reader = csv.DictReader(io.StringIO(_text(path)), delimiter=delimiter, strict=True)
    start = 2  # the line the record being read starts on (the header is line 1)
    try:
        for row in reader:
            n_header = len(reader.fieldnames or [])
            if None in row:  # extra cells are keyed None
                bad.add(reader.line_num, f"{_cells(n_header + len(row[None]))} where the header has {n_header}")
            elif any(value is None for value in row.values()):  # missing cells are filled with None
                n_cells = sum(value is not None for value in row.values())
                bad.add(reader.line_num, f"{_cells(n_cells)} where the header has {n_header}")
            else:
                rows.append((reader.line_num, row))
            start = reader.line_num + 1
    except csv.Error as err:  # an unclosed quote, a stray quote in strict mode: the rest cannot be split
        raise TaskError(f"{path} line {start}: not valid CSV ({err}); fix the quoting of that line") from None
    return rows

"""Bad data, offline hub models and unwritable outputs: each case ends with one line naming the problem (the
file and line, the repository and cache) and the fix. The rows of docs/bad_inputs.md's main table run in
test_config_checks.py; the rows of its "Offline and output folders" table run here."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from greater.config import ModelConfig, TaskConfig
from greater.lifecycle.writable import NotWritable, check_outputs, check_writable
from greater.models.hub import HubModelUnavailable, is_cached, require_hub_model
from greater.models.weights import resolve_weights
from greater.tasks import TaskError, build_task, loaders
from tests.helpers import ROOT, error_line, run_cli

BAD = ROOT / "tests" / "data" / "bad"
FAKE_REPO = "no-such-org/no-such-model"


def custom(path, **fields) -> TaskConfig:
    base = dict(name="custom", loader="custom", file=str(path), n_train=1, n_test=1, answer_type="text")
    return TaskConfig(**{**base, **fields})


def failure(cfg: TaskConfig, data_dir: str | None = None) -> str:
    with pytest.raises(TaskError) as caught:
        build_task(cfg, data_dir, seed=0)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---- malformed rows: an error by default, naming file and line --------------------------------------
def test_a_truncated_jsonl_line_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n\n{"question": "b", "answer": "2"}\n{"question": "c", "ans\n')
    message = failure(custom(path))
    assert message.startswith(f"{path} line 4: not valid JSON (Unterminated string")  # the blank line counts
    assert message.endswith("fix or delete that line, or set task.skip_bad_rows=true to skip unreadable rows")


def test_every_bad_row_is_counted_and_the_first_named(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n[1, 2]\n{"question": "b"}\n{"question": "", "answer": "3"}\n')
    message = failure(custom(path))
    assert message.startswith(f"{path} line 2: a JSON list, not an object with named fields (and 2 more bad row(s))")


def test_skip_bad_rows_drops_them_and_reports_how_many_and_which(tmp_path, caplog):
    path = tmp_path / "data.csv"
    path.write_text("question,answer\na,1\nb\nc,3,extra\nd,4\n,5\ne,6\n")
    with caplog.at_level(logging.WARNING):
        task = build_task(custom(path, skip_bad_rows=True, n_train=1, n_test=2), None, seed=0)
    assert {e.question for e in task.train + task.test} == {"a", "d", "e"}
    assert {e.id for e in task.train + task.test} == {"data.csv:2", "data.csv:5", "data.csv:7"}  # by line
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert record.getMessage() == (
        f"{path}: skipped 3 row(s) that could not be read (task.skip_bad_rows=true), lines 3, 4, 6; "
        "first: line 3: 1 cell where the header has 2"
    )


def test_csv_rows_with_too_many_cells_and_broken_quoting_name_their_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("question,answer\na,1\nb,2,3\n")
    assert failure(custom(path)).startswith(f"{path} line 3: 3 cells where the header has 2;")
    path.write_text('question,answer\na,1\n"b,2\n')
    message = failure(custom(path))
    assert message.startswith(f"{path} line 3: not valid CSV (") and message.endswith("fix the quoting of that line")


def test_a_file_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"question": "a", "answer": "1"}\n{"question": "caf\xe9", "answer": "2"}\n')
    assert failure(custom(path)) == f"{path} line 2: not UTF-8 text (invalid continuation byte); save the file as UTF-8"


def test_task_file_naming_a_directory_says_so(tmp_path):
    assert failure(custom(tmp_path)) == (
        f"task.file '{tmp_path}' is a directory; give the path of a .jsonl or .csv file in it"
    )


def test_benchmark_files_name_file_and_line(tmp_path):
    (tmp_path / "bbh").mkdir()
    (tmp_path / "bbh" / "navigate.json").write_text('{"examples": [{"input": "a", "target": "b"}, {"input": "c"}]}')
    cfg = TaskConfig(name="bbh/navigate", loader="bbh", answer_type="text", n_train=1, n_test=1)
    assert failure(cfg, str(tmp_path)).startswith(f"{tmp_path}/bbh/navigate.json example 2: no 'target' field;")
    cfg = TaskConfig(name="gsm8k", loader="gsm8k", answer_type="integer", n_train=1, n_test=1)
    assert failure(cfg, str(BAD)).startswith(f"{BAD}/gsm8k/train.jsonl line 2: no '####' in a GSM8K answer;")


def test_clean_benchmark_files_keep_their_ids(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    rows = "".join(f'{{"question": "q{i}", "answer": "#### {i}"}}\n' for i in range(4))
    (tmp_path / "gsm8k" / "train.jsonl").write_text(rows)
    (tmp_path / "gsm8k" / "test.jsonl").write_text("\n" + rows)  # a blank line shifts no id
    pool, test = loaders.load_gsm8k(str(tmp_path), str(tmp_path))
    assert [e.id for e in pool] == [f"gsm8k-train#{i}" for i in range(4)]
    assert [e.id for e in test] == [f"gsm8k-test#{i}" for i in range(4)] and test[3].answer == "3"


def test_hub_data_set_rows_are_named_by_row(monkeypatch):
    rows = [{"question": "q", "answer": "#### 1"}, {"question": "q2", "answer": "two"}]
    monkeypatch.setattr(loaders, "_hub", lambda *args: rows)
    with pytest.raises(TaskError, match=r"^hub dataset 'openai/gsm8k' \(train\) row 2: no '####' in a GSM8K answer;"):
        loaders.load_gsm8k(None, "unused")
    pool, _ = loaders.load_gsm8k(None, "unused", skip_bad_rows=True)
    assert [e.id for e in pool] == ["gsm8k-train#0"]


# ---- a hub model that is not cached ------------------------------------------------------------------
def hub_model(path: str = FAKE_REPO) -> ModelConfig:
    return ModelConfig(name="fake", source="hub", path=path)


def table_line(case: str) -> str:
    """The documented line of a row of the "Offline and output folders" table."""
    for line in (ROOT / "docs" / "bad_inputs.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) == 3 and cells[0] == case:
            return cells[2].strip("`").replace('\\"', '"')
    raise AssertionError(f"no row {case!r} in docs/bad_inputs.md")


def test_offline_and_not_cached_fails_at_once_naming_repo_cache_and_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(HubModelUnavailable) as caught:
        resolve_weights(hub_model(), tmp_path / "greater-cache")
    assert time.perf_counter() - started < 1  # no connection is even tried
    documented = table_line("Hub model not in the cache, offline").replace("<HF_HOME>", str(tmp_path))
    assert f"error: {caught.value}" == documented


def test_no_route_to_the_hub_fails_after_one_probe(tmp_path, monkeypatch):
    from greater.models import hub

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    probes = []
    monkeypatch.setattr(hub, "hub_reachable", lambda: probes.append(1) or False)
    with pytest.raises(HubModelUnavailable, match=f"'{FAKE_REPO}' is not in the cache {tmp_path}/hub and the hub"):
        require_hub_model(FAKE_REPO)
    assert probes == [1]
    documented = table_line("Hub model not in the cache, no route to the hub")
    assert documented.startswith("error: model.path: hub model") and "the hub cannot be reached" in documented


def test_a_cached_model_or_a_folder_passes_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "hub" / "models--org--cached"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    assert not is_cached("org/cached")  # a ref without its snapshot is not a usable checkpoint
    (folder / "snapshots" / "abc123").mkdir(parents=True)
    (folder / "snapshots" / "abc123" / "config.json").write_text("{}")
    assert resolve_weights(hub_model("org/cached"), tmp_path) == "org/cached"
    assert resolve_weights(hub_model(str(tmp_path)), tmp_path) == str(tmp_path)  # a folder loads as it is
    with pytest.raises(HubModelUnavailable, match="'org/cached@v2' is not in the cache"):
        require_hub_model("org/cached", revision="v2")


def test_the_command_line_prints_the_hub_line_and_exits_1(tmp_path):
    proc = run_cli(
        [
            "model.source=hub",
            f"model.path={FAKE_REPO}",
            "task=synthetic/compare_numbers",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        timeout=300,
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = error_line(proc)
    assert line.startswith(f"error: model.path: hub model '{FAKE_REPO}' is not in the cache {tmp_path}/hf/hub")
    assert "model.source=local model.path=" in line and "Traceback" not in proc.stderr


# ---- output folders --------------------------------------------------------------------------------
def test_an_unwritable_output_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotWritable) as caught:
        check_outputs(blocker / "run", tmp_path / "cache")
    line = table_line("Output directory that cannot be written").replace("<dir>", str(blocker))
    assert f"error: {caught.value}" == line
    with pytest.raises(NotWritable) as caught:
        check_outputs(tmp_path / "run", blocker / "cache")
    assert f"error: {caught.value}" == table_line("Cache folder that cannot be written").replace("<dir>", str(blocker))


def test_a_writable_folder_is_created_and_left_clean(tmp_path):
    folder = check_writable(tmp_path / "a" / "b", "hydra.run.dir")
    assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")
def test_a_read_only_file_system_is_named(tmp_path):
    with pytest.raises(NotWritable, match=r"^cache_dir=/proc/greater-test: cannot write there \(.+\); set cache_dir="):
        check_writable("/proc/greater-test", "cache_dir")

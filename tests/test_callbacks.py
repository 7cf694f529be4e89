"""Callbacks: JSONL round trip and resume truncation, console lines, failure isolation, W&B offline."""

import io
import json
import logging
import struct
import time

import pytest

from greater.callbacks import build_callbacks
from greater.callbacks.base import Callback, CallbackList
from greater.callbacks.console import ConsoleCallback
from greater.callbacks.jsonl import JsonlHistory, read_history
from greater.config import LoggerConfig
from greater.lifecycle.results import RunResult, TestRow
from greater.records import RunInfo, StepRecord


def record(step, prompt="Think step by step."):
    return StepRecord(
        step=step,
        method="greater",
        prompt=prompt,
        train_score=1.0 / step,
        best_prompt=prompt,
        best_score=0.5,
        seconds=3.51,
        stage_seconds={"reasoning": 1.0, "gradient": 0.5, "proposal": 0.01, "selection": 2.0},
        model_calls={"task.rollouts": 8},
        details={
            "summary": "pos 0 token ' by'",
            "candidates": [{"token_id": 7, "token": " by", "gradient_score": -0.5, "train_acc": 1.0}],
        },
    )


def test_jsonl_round_trips_step_records(tmp_path):
    history = JsonlHistory(tmp_path)
    records = [record(1), record(2, "Think.")]
    for r in records:
        history.on_step_end(r)
    assert [StepRecord.from_dict(h) for h in read_history(tmp_path / "history.jsonl")] == records


def test_jsonl_resume_drops_the_steps_it_will_write_again(tmp_path):
    history = JsonlHistory(tmp_path)
    for step in (1, 2, 3):
        history.on_step_end(record(step))
    resumed = JsonlHistory(tmp_path, start_step=3)
    resumed.on_step_end(record(3, "again"))
    lines = read_history(tmp_path / "history.jsonl")
    assert [h["step"] for h in lines] == [1, 2, 3] and lines[-1]["prompt"] == "again"
    JsonlHistory(tmp_path)  # a fresh run in the same directory starts a new history
    assert not (tmp_path / "history.jsonl").exists()


def test_console_shows_step_loss_and_prompt(capsys):
    ConsoleCallback().on_step_end(record(4, "Count carefully."))
    out = capsys.readouterr().out
    assert "greater step   4" in out and "acc 0.250" in out and "Count carefully." in out and "' by'" in out


def test_console_bar_follows_generation_and_only_when_asked():
    out, bar = io.StringIO(), io.StringIO()
    console = ConsoleCallback(stream=out, progress_bar=True, bar_stream=bar)
    for done in (2, 4, 6):
        console.on_generation(done, 6)
    drawn = bar.getvalue()
    assert "generating" in drawn and "2/6" in drawn and "4/6" in drawn and out.getvalue() == ""
    assert console._bar is None  # closed when the last batch is done

    quiet = io.StringIO()
    one_batch = ConsoleCallback(stream=out, progress_bar=True, bar_stream=quiet)
    one_batch.on_generation(3, 3)  # a single batch: nothing to wait for, no bar
    off = ConsoleCallback(stream=out, progress_bar=False, bar_stream=quiet)
    off.on_generation(1, 6)
    assert quiet.getvalue() == ""


class Broken(Callback):
    def on_step_end(self, record):
        raise RuntimeError("boom")


class Counter(Callback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, record):
        self.steps += 1


def test_a_failing_callback_warns_once_and_the_others_go_on(caplog):
    counter = Counter()
    hooks = CallbackList([Broken(), counter])
    with caplog.at_level(logging.WARNING):
        for step in (1, 2, 3):
            hooks.on_step_end(record(step))
    assert counter.steps == 3
    assert caplog.text.count("Broken failed") == 1


def wandb_logger(tmp_path, **kwargs):
    cfg = LoggerConfig(
        console=False,
        jsonl=False,
        plots=False,
        wandb=True,
        wandb_mode=kwargs.pop("wandb_mode", "offline"),
        wandb_project="greater-test",
        **kwargs,
    )
    return build_callbacks(cfg, tmp_path)


def fake_result(rows):
    return RunResult(
        task="t",
        model="tiny",
        optimizer="greater",
        seed=0,
        initial_prompt="prompt 0",
        final_prompt="prompt 3",
        train={"n": 4, "initial_acc": 0.25, "final_acc": 0.5, "metric": "exact_match"},
        test=rows,
        steps=3,
        seconds={"optimization": 9.0, "total": 12.0, "until_evaluation": 10.0},
    )


def fake_row(model="tiny", kind="final", acc=0.75):
    return TestRow(model, kind, acc, 0.3, 0.95, 4, 1, 2.0, f"predictions_{model}_{kind}.jsonl")


def run_fake(hooks, tmp_path, steps=3):
    hooks.on_run_start(RunInfo(config={"seed": 0}, run_dir=str(tmp_path), model="tiny", task="t", method="greater"))
    for step in range(1, steps + 1):
        hooks.on_step_end(record(step, f"prompt {step}"))
    hooks.on_evaluation_end(fake_row())
    (tmp_path / "result.json").write_text(json.dumps({"final_prompt": "prompt 3"}))
    hooks.on_run_end(fake_result([fake_row()]))
    hooks.close()


def test_console_reads_the_typed_evaluation_row_and_result():
    out = io.StringIO()
    console = ConsoleCallback(stream=out, progress_bar=False)
    console.on_run_start(RunInfo(config={}, run_dir="runs/x", model="tiny", task="t", method="greater", start_step=3))
    console.on_evaluation_end(fake_row(kind="initial", acc=0.5))
    console.on_run_end(fake_result([fake_row(kind="initial", acc=0.5), fake_row(), fake_row("other", acc=0.25)]))
    lines = out.getvalue().splitlines()
    assert lines[0] == "greater: t on tiny -> runs/x, resuming after step 2"
    assert lines[1] == "test  initial prompt on tiny: parsed acc 0.500 [0.300, 0.950] over 4 (1 unparsed)"
    assert "t on tiny: 3 steps, 12s" in out.getvalue()
    assert "   final prompt: 'prompt 3'  test acc 0.750 (n=4)" in lines
    assert "         on other (final): test acc 0.250 (n=4)" in lines
    assert "12s in all" in lines  # a record from before "load" was kept


def test_console_says_where_the_runs_time_went():
    out = io.StringIO()
    result = fake_result([fake_row()])
    result.seconds = {"load": 1.5, "optimization": 7.0, "until_evaluation": 10.0, "total": 12.0}
    ConsoleCallback(stream=out, progress_bar=False).on_run_end(result)
    assert "time: load 2s, optimization 7s, dev pick 2s, test 2s" in out.getvalue().splitlines()


def test_wandb_offline_run_records_every_step(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    run_fake(wandb_logger(tmp_path), tmp_path)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    history, summary = read_flushed_run(runs[0], steps=3)
    assert [h["_step"] for h in history] == [1, 2, 3]
    assert [h["prompt"] for h in history] == ["prompt 1", "prompt 2", "prompt 3"]
    assert [h["train/acc"] for h in history] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [h["compute/task.rollouts"] for h in history] == [8, 8, 8]
    assert summary["final_prompt"] == "prompt 3" and summary["tiny/final/test/acc"] == 0.75
    assert summary["tiny/final/test/metric"] == "parsed" and summary["train/metric"] == "exact_match"


def wandb_log_records(path):
    """The protobuf payloads of a .wandb file: a 7-byte file header, then LevelDB-log records (7-byte
    header: crc32, length, type) in 32 KiB blocks; types 1 full, 2 first, 3 middle, 4 last."""
    data, pos, block, out, pending = path.read_bytes(), 7, 32768, [], b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind in (2, 3):
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
            pending = b""
    return out


def read_flushed_run(run_dir, steps, timeout=30.0):
    """`read_offline_run` once the file holds `steps` history rows and the final summary: wandb's service
    process may still be flushing it when finish() returns on a busy machine."""
    deadline = time.monotonic() + timeout
    while True:
        history, summary = read_offline_run(next(run_dir.glob("*.wandb")))
        if (len(history) >= steps and "final_prompt" in summary) or time.monotonic() > deadline:
            return history, summary
        time.sleep(0.5)


def read_offline_run(path):
    """History rows and summary updates stored in an offline run's .wandb file."""
    from wandb.proto import wandb_internal_pb2

    rows, summary = [], {}
    for data in wandb_log_records(path):
        rec = wandb_internal_pb2.Record()
        try:
            rec.ParseFromString(data)
        except Exception:  # a record the writer had not finished flushing when the file was read
            continue
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            summary.update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.summary.update})
    return rows, summary


def test_wandb_failure_is_one_warning_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    import wandb

    def broken(*args, **kwargs):
        raise ConnectionError("no route to W&B")

    monkeypatch.setattr(wandb, "init", broken)
    with caplog.at_level(logging.WARNING):
        run_fake(wandb_logger(tmp_path), tmp_path)
    assert caplog.text.count("Weights & Biases failed") == 1


def test_wandb_unreachable_server_records_offline_and_says_how_to_sync(tmp_path, monkeypatch, caplog):
    """Logged in (an API key) but no route to the server: the run is kept offline, not dropped."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    with caplog.at_level(logging.INFO):
        run_fake(wandb_logger(tmp_path, wandb_mode="auto"), tmp_path)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    history, summary = read_flushed_run(runs[0], steps=3)
    assert [h["_step"] for h in history] == [1, 2, 3] and summary["final_prompt"] == "prompt 3"
    assert f"wandb sync {runs[0]}" in caplog.text and "cannot be reached" in caplog.text


def test_wandb_project_defaults_to_the_environment(tmp_path, monkeypatch):
    from greater.callbacks.wandb_logger import WandbCallback

    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    assert WandbCallback(tmp_path, mode="disabled").project == "from-env"
    assert WandbCallback(tmp_path, project="mine", mode="disabled").project == "mine"
    monkeypatch.delenv("WANDB_PROJECT")
    assert WandbCallback(tmp_path, mode="disabled").project == "greater"

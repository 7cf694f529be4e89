"""Faults: signals stop at a step boundary, a checkpoint is never half written and a damaged one is refused, one
live run per run directory. Each row of docs/bad_inputs.md's "Faults" table is a test here (FAULT_TESTS); the
signal tests send real signals to a real child process (tests/fault_child.py: GReaTer on the tiny model)."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greater.lifecycle import rundir as rundir_module
from greater.lifecycle.checkpoint import CheckpointError, load_checkpoint, load_counters, save_checkpoint
from greater.lifecycle.lock import LOCK_NAME, RunLock, RunLocked
from greater.lifecycle.loop import optimize
from greater.lifecycle.stop import RunStopped, stop_on_signals, stop_requested
from greater.optimizers.loop import Stages, SteppedOptimizer
from tests.eval_stop_child import OVERRIDES, tiny_from_config
from tests.fault_child import run as run_in_process
from tests.helpers import ROOT

CHILD = ROOT / "tests" / "fault_child.py"
EVAL_CHILD = ROOT / "tests" / "eval_stop_child.py"
N_STEPS = 3
FAULT_TESTS = {  # a row of the Faults table -> the test that shows it
    "SIGTERM or SIGINT (Ctrl-C) during a run": "test_sigterm_after_the_first_step_resumes_to_the_same_prompt",
    "A second SIGTERM or SIGINT": "test_a_held_directory_and_a_second_signal",
    "SIGTERM or SIGINT during the test evaluation": "test_sigterm_during_the_test_split_stops_at_a_batch_and_resumes",
    "kill -9, a power cut, SLURM's SIGKILL after its grace period": "test_kill_9_mid_write_keeps_the_last_checkpoint",
    "Full disk (or a write error) while checkpoint.json is written": "test_a_full_disk_keeps_the_previous_checkpoint",
    "Truncated or damaged checkpoint.json": "test_a_truncated_checkpoint_is_refused_by_name",
    "Hand-edited checkpoint.json": "test_a_hand_edited_checkpoint_is_refused_by_name",
    "A second run started in a directory a live run holds": "test_a_held_directory_and_a_second_signal",
    "A run directory whose lock holder is gone (killed with -9, a reboot)": "test_a_stale_lock_is_taken_over",
}


def fault_rows() -> dict[str, str]:
    """The Faults table of docs/bad_inputs.md: fault -> what greater does."""
    text = (ROOT / "docs" / "bad_inputs.md").read_text().split("## Faults", 1)[1]
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in text.splitlines()]
    return {r[0]: r[2] for r in rows if len(r) == 3 and r[0] not in ("Fault", "---|---|---")}


def test_every_fault_row_has_its_test():
    assert set(fault_rows()) == set(FAULT_TESTS)
    assert all(callable(globals().get(name)) for name in FAULT_TESTS.values())


def documented(fault: str, quoted: int = 0) -> str:
    """The `quoted`-th `...` span of a Faults row."""
    return fault_rows()[fault].split("`")[1 + 2 * quoted]


# ---- signals to a real child process -------------------------------------------------------------
def start_child(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(run_dir), str(N_STEPS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def wait_for_line(proc: subprocess.Popen, wanted: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == wanted:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child ended ({proc.returncode}) before {wanted!r}: {proc.stderr.read()[-2000:]}")
    proc.kill()
    raise AssertionError(f"no {wanted!r} within {timeout} s")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> str:
    """The final prompt of a run never stopped, in this process (the same code as the child's)."""
    return run_in_process(tmp_path_factory.mktemp("whole"), N_STEPS)


def test_sigterm_after_the_first_step_resumes_to_the_same_prompt(tmp_path, uninterrupted, capsys):
    child = start_child(tmp_path)
    wait_for_line(child, "step 1")
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=240)
    assert child.returncode == 128 + signal.SIGTERM, err[-2000:]
    saved = load_checkpoint(tmp_path, "greater")
    assert 1 <= saved["step"] < N_STEPS  # the step in flight was finished and saved, nothing after it ran
    assert "final:" not in out
    lines = [line for line in err.splitlines() if line.startswith("SIGTERM")]
    fault = "SIGTERM or SIGINT (Ctrl-C) during a run"
    assert lines == [documented(fault, 0), documented(fault, 1).replace("<dir>", str(tmp_path))]
    assert not (tmp_path / LOCK_NAME).exists()  # the lock went with the run
    capsys.readouterr()
    assert run_in_process(tmp_path, N_STEPS, resume=True) == uninterrupted
    ran = capsys.readouterr().out.split()[1::2]  # "step k" lines: only the steps after the saved one ran
    assert ran == [str(k) for k in range(saved["step"] + 1, N_STEPS + 1)]
    assert len(load_checkpoint(tmp_path, "greater")["history"]) == N_STEPS


def test_a_held_directory_and_a_second_signal(tmp_path):
    child = start_child(tmp_path, "--stall-after", "1")  # step 2 sleeps a minute: it is surely in flight
    wait_for_line(child, "step 1")
    time.sleep(0.5)  # step 1's checkpoint is written right after its report
    with pytest.raises(RunLocked) as caught:  # a second run in the live run's directory is refused
        RunLock(tmp_path).acquire()
    holder = json.loads((tmp_path / LOCK_NAME).read_text())
    fault = "A second run started in a directory a live run holds"
    expected = documented(fault).replace("<dir>", str(tmp_path)).replace("<pid>", str(child.pid))
    expected = expected.replace("<host>", socket.gethostname()).replace("<time>", holder["since"])
    assert f"error: {caught.value}" == expected
    child.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert child.poll() is None  # the first signal waits for the step in flight
    sent = time.monotonic()
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert time.monotonic() - sent < 10 and child.returncode == 128 + signal.SIGTERM
    assert documented("A second SIGTERM or SIGINT").replace("<dir>", str(tmp_path)) in err
    assert load_checkpoint(tmp_path, "greater")["step"] == 1  # the last completed step, whole
    assert not (tmp_path / LOCK_NAME).exists()


def test_kill_9_mid_write_keeps_the_last_checkpoint(tmp_path):
    """A writer killed with -9 between its temporary file and the rename: the checkpoint stays the last one."""
    save_checkpoint(tmp_path, "m", {"history": [1], "x": 1})
    writer = (
        "import os, sys; from greater.lifecycle import checkpoint as c, rundir; "
        "rundir.os.replace = lambda *a: os.kill(os.getpid(), 9); "  # die at the rename, the new file fully written
        f"c.save_checkpoint({str(tmp_path)!r}, 'm', {{'history': [1, 2], 'x': 2}})"
    )
    proc = subprocess.run([sys.executable, "-c", writer], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(tmp_path, "m") == {"history": [1], "x": 1}


def test_sigterm_during_the_test_split_stops_at_a_batch_and_resumes(tmp_path, monkeypatch):
    """The first SIGTERM during the test evaluation ends it at the next batch boundary (not after both
    prompts), the finished batch's predictions kept; resume= evaluates only the rest and ends like a run never
    stopped: the same test rows and the same predictions."""
    from greater.lifecycle import runner
    from greater.models.language_model import LanguageModel
    from tests.test_runner import composed

    monkeypatch.setattr(LanguageModel, "from_config", staticmethod(tiny_from_config))
    whole = tmp_path / "whole"
    runner.run(composed(whole, *OVERRIDES))  # the run never stopped, in this process (the child's code)

    stopped = tmp_path / "stopped"
    child = subprocess.Popen(
        [sys.executable, str(EVAL_CHILD), str(stopped), "--pause"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    wait_for_line(child, "test batch 2")  # the first test batch is done; the child pauses a second
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=240)
    assert child.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "test batch" not in out  # no batch ran after the signal
    assert not (stopped / "result.json").exists()
    kept = list((stopped / "evaluations").glob("*.jsonl"))
    assert len(kept) == 1 and len(kept[0].read_text().splitlines()) == 2  # the finished batch, on disk
    fault = "SIGTERM or SIGINT during the test evaluation"
    lines = [line for line in err.splitlines() if line.startswith("SIGTERM")]
    assert lines == [documented(fault, 0), documented(fault, 1).replace("<dir>", str(stopped))]

    again = subprocess.run(
        [sys.executable, str(EVAL_CHILD), str(stopped), "--resume"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    evaluated = [int(line.split()[-1]) for line in again.stdout.splitlines() if line.startswith("test batch")]
    n_test = json.loads((whole / "result.json").read_text())["test"][0]["n"]
    assert sum(evaluated) == n_test - 2  # only the examples the stop left

    def outcome(run_dir):
        result = json.loads((run_dir / "result.json").read_text())
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in result["test"]]
        files = {row["predictions_file"]: (run_dir / row["predictions_file"]).read_text() for row in rows}
        return result["final_prompt"], rows, files

    assert outcome(stopped) == outcome(whole)
    assert not (stopped / "evaluations").exists()  # the in-progress predictions went with the finished run


def test_a_zero_shot_run_stopped_during_the_test_split_resumes_without_a_checkpoint(tmp_path, monkeypatch):
    """zs_cot saves no checkpoint (its search has no state): resume= searches again and evaluates only what
    the stop left, ending like a run never stopped."""
    from greater.lifecycle import plan, runner
    from greater.models.language_model import LanguageModel
    from tests.test_runner import composed

    monkeypatch.setattr(LanguageModel, "from_config", staticmethod(tiny_from_config))
    overrides = ("optimizer=zs_cot", "task.n_test=6")
    runner.run(composed(tmp_path / "whole", *overrides))
    batches, seen = plan.evaluate_in_batches, []

    def stopped_after_the_first(*args, **kwargs):
        for result in batches(*args, **kwargs):
            seen.append(result.n)
            if len(seen) == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets the flag
            yield result

    monkeypatch.setattr(plan, "evaluate_in_batches", stopped_after_the_first)
    with pytest.raises(RunStopped) as caught:
        runner.run(composed(tmp_path / "stopped", *overrides))
    assert caught.value.unit == "evaluation batch" and seen == [2]
    assert not (tmp_path / "stopped" / "checkpoint.json").exists()
    runner.run(composed(tmp_path / "stopped", *overrides, f"resume={tmp_path / 'stopped'}"))
    assert seen == [2, 2, 2]  # the rest only

    def outcome(run_dir):
        result = json.loads((run_dir / "result.json").read_text())
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in result["test"]]
        return rows, (run_dir / rows[0]["predictions_file"]).read_text()

    assert outcome(tmp_path / "stopped") == outcome(tmp_path / "whole")


# ---- a signal in process: the loop's safe point --------------------------------------------------
class Count(SteppedOptimizer):
    """Steps that count; `kill_at` sends this process a signal in the middle of that step."""

    name = "count"

    def __init__(self, n_steps: int, kill_at: int | None = None, signum: int = signal.SIGINT) -> None:
        self.n_steps, self.kill_at, self.signum = n_steps, kill_at, signum
        self.stages = Stages()

    def more_steps(self, state, done):
        return done < self.n_steps

    def init_state(self, lm, task, ctx):
        return {"n": 0}

    def state_to_json(self, state):
        return dict(state)

    def step(self, state):
        from greater.records import StepRecord

        state["n"] += 1
        if state["n"] == self.kill_at:
            os.kill(os.getpid(), self.signum)  # delivered now; the handler only sets the flag
            assert stop_requested() == self.signum
        return StepRecord(state["n"], self.name, "p", None, "p", None)


def test_sigint_in_process_stops_at_the_next_boundary_and_restores_the_handlers(parity_task, tmp_path):
    from greater.lifecycle.context import context_for
    from tests.tiny import tiny_language_model

    before = signal.getsignal(signal.SIGINT)
    lm = tiny_language_model()
    ctx = context_for(lm, parity_task, run_dir=tmp_path)
    opt = Count(5, kill_at=2)
    with pytest.raises(RunStopped) as caught, stop_on_signals():
        optimize(opt, lm, parity_task, ctx)
    assert caught.value.exit_code == 130 and not caught.value.at_once
    assert load_checkpoint(tmp_path, "count")["n"] == 2  # the signalled step finished and was saved
    assert signal.getsignal(signal.SIGINT) is before and stop_requested() is None


# ---- checkpoint integrity ------------------------------------------------------------------------
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "m", {"history": [], "x": 1}, {"calls": 3.0})

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rundir_module.os, "fsync", full)
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(tmp_path, "m", {"history": [], "x": 2})
    fault = "Full disk (or a write error) while checkpoint.json is written"
    assert f"error: {caught.value}" == documented(fault).replace("<dir>", str(tmp_path))
    monkeypatch.undo()
    assert load_checkpoint(tmp_path, "m")["x"] == 1 and load_counters(tmp_path) == {"calls": 3.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]  # no partial file left


def test_a_truncated_checkpoint_is_refused_by_name(tmp_path):
    path = save_checkpoint(tmp_path, "m", {"history": [], "prompt": "Think."})
    path.write_text(path.read_text()[:40])
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path, "m")
    fault = "Truncated or damaged checkpoint.json"
    assert f"error: {caught.value}" == documented(fault).replace("<dir>", str(tmp_path))
    with pytest.raises(CheckpointError, match="is truncated or damaged"):  # the counters' reader too
        load_counters(tmp_path)


def test_a_hand_edited_checkpoint_is_refused_by_name(tmp_path):
    path = save_checkpoint(tmp_path, "m", {"history": [], "prompt": "Think."})
    path.write_text(path.read_text().replace("Think.", "Think harder."))
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path, "m")
    fault = "Hand-edited checkpoint.json"
    assert f"error: {caught.value}" == documented(fault).replace("<dir>", str(tmp_path))


def test_a_checkpoint_round_trips_and_one_without_checksum_still_loads(tmp_path):
    state = {"history": [], 3: "int keys come back as strings", "t": (1, 2)}
    save_checkpoint(tmp_path, "m", state)
    assert load_checkpoint(tmp_path, "m") == {"history": [], "3": "int keys come back as strings", "t": [1, 2]}
    payload = json.loads((tmp_path / "checkpoint.json").read_text())
    del payload["sha256"]  # as written before the checksum existed
    (tmp_path / "checkpoint.json").write_text(json.dumps(payload))
    assert load_checkpoint(tmp_path, "m")["3"] == "int keys come back as strings"


# ---- the run-directory lock ----------------------------------------------------------------------
def test_a_stale_lock_is_taken_over(tmp_path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "since": "then"}))
    with RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()
    assert f"taking over a stale lock (pid {gone.pid} on {socket.gethostname()} (since then)" in caplog.text


def test_a_reused_pid_or_a_garbled_lock_is_stale_and_another_hosts_is_not(tmp_path):
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": "x", "process_start": "not-my-start-time"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(me))  # this pid, but another process's start time
    RunLock(tmp_path).acquire().release()
    (tmp_path / LOCK_NAME).write_text("{")
    RunLock(tmp_path).acquire().release()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "x"}))
    with pytest.raises(RunLocked, match="in use by pid 1 on elsewhere"):
        RunLock(tmp_path).acquire()
    assert (tmp_path / LOCK_NAME).exists()  # someone else's lock is never removed


def test_release_never_removes_another_runs_lock(tmp_path):
    lock = RunLock(tmp_path).acquire()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "x"}))
    lock.release()
    assert (tmp_path / LOCK_NAME).exists()

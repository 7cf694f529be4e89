"""Multirun sweeps and resumed runs: what resume honours and refuses (tiny stand-in models, fast), and a
killed command that, run again as it was, ends as if never stopped (the real entry point, slow)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greater.compare.collect import collect
from greater.lifecycle import runner
from greater.lifecycle.launch import Launch
from greater.lifecycle.results import RunResult
from greater.lifecycle.resume import ResumeError, resolve
from tests.helpers import ROOT, TINY, run_cli
from tests.test_runner import composed, tiny_models  # noqa: F401  (a fixture)


def _history(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished two-step run, made once with the tiny stand-in model."""
    from greater.models.language_model import LanguageModel
    from tests.tiny import tiny_language_model

    def fake_from_config(cfg, cache_dir=None, usage=None):
        lm = tiny_language_model(seed=1, usage=usage)
        lm.name = cfg.name
        return lm

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LanguageModel, "from_config", staticmethod(fake_from_config))
        runner.run(composed(run_dir))
    return run_dir


@pytest.fixture
def two_steps(finished_run, tmp_path, tiny_models):  # noqa: F811
    """A copy of the finished run in tmp_path/first, which a test may resume."""
    return Path(shutil.copytree(finished_run, tmp_path / "first"))


def test_resume_dir_extends_the_run_in_its_own_directory(two_steps, tmp_path):
    launch = Launch(overrides=(f"resume={two_steps}", "optimizer.n_steps=3"))
    elsewhere = tmp_path / "elsewhere"
    runner.run(composed(elsewhere, f"resume={two_steps}", "optimizer.n_steps=3"), launch)
    assert json.loads((two_steps / "result.json").read_text())["steps"] == 3
    assert _history(two_steps) == [1, 2, 3] and not elsewhere.exists()


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("task.n_train=5", "task.n_train=5 (saved: 4)"),
        ("seed=1", "seed=1 (saved: 0)"),
        ("max_reasoning_tokens=8", "max_reasoning_tokens=8 (saved: 4)"),
        ("experiment=paper_bbh", "`experiment=paper_bbh` cannot apply mid-run"),
        ("model=gemma3-270m", "`model=gemma3-270m` is not the saved run's model"),
        ("+task.newkey=1", "cannot apply mid-run"),
    ],
)
def test_resume_dir_refuses_what_a_run_cannot_change_mid_way(two_steps, tmp_path, override, named):
    cfg = composed(
        tmp_path / "x", f"resume={two_steps}", *([override] if not override.startswith(("+", "exp")) else [])
    )
    with pytest.raises(ResumeError, match=re.escape(named)):
        resolve(cfg, [f"resume={two_steps}", override])


def test_resume_dir_keeps_the_same_group_choice(two_steps, tmp_path):
    resumed = resolve(composed(tmp_path / "x", f"resume={two_steps}"), ["model=smollm2-135m", "logger.jsonl=true"])
    assert resumed.run_dir == two_steps and resumed.from_checkpoint and resumed.cfg.output_dir == str(two_steps)


def test_resume_dir_takes_a_group_that_changes_only_what_may_change(two_steps, tmp_path):
    cfg = composed(tmp_path / "x", f"resume={two_steps}", "logger=wandb", "optimizer=zs_cot")
    resumed = resolve(cfg, ["logger=wandb"])
    assert resumed.cfg.logger.wandb and resumed.cfg.optimizer.name == "greater"
    with pytest.raises(ResumeError, match=r"`optimizer=zs_cot` is not the saved run's optimizer"):
        resolve(cfg, ["optimizer=zs_cot"])


def test_resume_auto_continues_only_a_matching_run(two_steps, tmp_path):
    same = resolve(composed(two_steps, "resume=auto", "optimizer.n_steps=3"), [])
    assert same.from_checkpoint and same.run_dir == two_steps and same.cfg.optimizer.n_steps == 3
    with pytest.raises(ResumeError, match=r"task.n_train: 4 -> 5"):
        resolve(composed(two_steps, "resume=auto", "task.n_train=5"), [])
    fresh = resolve(composed(tmp_path / "new", "resume=auto"), [])
    assert not fresh.from_checkpoint


def test_a_multirun_job_resumes_by_default_and_a_single_run_does_not(two_steps):
    cfg = composed(two_steps)
    assert resolve(cfg, [], multirun=True).from_checkpoint
    assert not resolve(cfg, [], multirun=False).from_checkpoint


def test_run_dir_holds_json_state_and_no_pickle(two_steps):
    names = {p.name for p in two_steps.iterdir()}
    assert {"checkpoint.json", "config.yaml", "result.json"} <= names
    assert not [n for n in names if n.endswith((".pt", ".pkl", ".pickle", ".bin"))]


@pytest.mark.slow
def test_two_by_two_multirun_with_submitit_local(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "threads=1",  # four jobs share two cores: one torch thread each
        "hydra/launcher=local",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        "optimizer.n_steps=1",
        "seed=0,1",
        "optimizer.topk=4,8",
    ]
    proc = run_cli(args, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(sweep.rglob("result.json"))
    assert len(results) == 4
    table = collect(sweep)
    finals = table[table.prompt_kind == "final"]
    assert len(finals) == 4 and set(finals.seed) == {0, 1}
    # run directories name their overrides
    names = [p.parent.name for p in results]
    for k in (4, 8):
        for s in (0, 1):
            assert sum(f"optimizer.topk={k}," in n and f"seed={s}," in n for n in names) == 1


def history_steps(run_dir):
    path = run_dir / "history.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_a_killed_command_run_again_ends_like_one_never_stopped(tmp_path):
    """resume=auto (what a re-queued cluster job runs with): the same command, run again, continues."""
    common = [*TINY, "optimizer.n_steps=4", "evaluation.evaluate_initial=false", "task.n_test=2", "threads=1"]
    straight = tmp_path / "straight"
    assert run_cli([*common, f"hydra.run.dir={straight}"]).returncode == 0

    killed = tmp_path / "killed"
    command = [sys.executable, str(ROOT / "run.py"), *common, "resume=auto", f"hydra.run.dir={killed}"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 600
    while len(history_steps(killed)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # killed, not asked: no handler runs
    proc.wait()
    assert 2 <= len(history_steps(killed)) < 4 and not (killed / "result.json").exists()

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    a = RunResult.read(straight)
    b = RunResult.read(killed)
    assert b.final_prompt == a.final_prompt and b.steps == 4
    assert [(r.prompt_kind, r.acc) for r in b.test] == [(r.prompt_kind, r.acc) for r in a.test]

    def comparable(run_dir):
        rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
        # time and work counters differ (the resumed process re-fills its caches); everything else may not
        return [{k: v for k, v in row.items() if k not in ("seconds", "stage_seconds", "model_calls")} for row in rows]

    assert comparable(killed) == comparable(straight)


def test_a_multirun_from_the_command_line_shares_its_jobs_evaluations(tmp_path, tiny_models, monkeypatch):  # noqa: F811
    """The CLI's Launch (built from Hydra once) tells each job its sweep: two jobs that differ only in how
    they log evaluate one prompt once, in this process, with the basic launcher."""
    from hydra.core.global_hydra import GlobalHydra

    from greater import cli

    sweep = tmp_path / "sweep"
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # the command line sets it; restored after the test
    args = ["optimizer=zs_cot", "task.n_test=2", "max_reasoning_tokens=4", "logger.plots=false"]
    argv = [
        "greater",
        "-m",
        *args,
        f"cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
        "logger.jsonl=true,false",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    try:
        cli.main()
    finally:
        GlobalHydra.instance().clear()  # Hydra's main leaves itself initialized; later composes start afresh
    results = sorted(sweep.glob("*/result.json"))
    assert len(results) == 2 and len(list((sweep / "evaluations").iterdir())) == 1
    first, second = (RunResult.read(path) for path in results)
    assert [(r.acc, r.n) for r in first.test] == [(r.acc, r.n) for r in second.test]

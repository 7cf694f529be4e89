"""What a continued run may change, as each field's resume policy declares it: the settings that change no
result (batch sizes, the prefix store, reasoning reuse) continue a run under resume=<dir> and resume=auto and
keep a finished run finished; the ones the saved steps were computed with are still refused."""

import json
import re
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from greater.lifecycle import runner
from greater.lifecycle.launch import Launch
from greater.lifecycle.resume import CONFIG_NAME, ResumeError, resolve
from tests.test_runner import composed, tiny_models  # noqa: F401  (a fixture)

NO_RESULT_CHANGE = [
    "model.loss_batch_size=2",
    "model.prefix_cache_mb=0",
    "model.reuse_reasoning=true",
    "model.batch_size=3",
    "model.batch_tokens=512",
]


def saved_run(run_dir: Path, finished: bool) -> Path:
    """A run directory as a run leaves it (its config, a checkpoint, result.json when finished), no model run."""
    run_dir.mkdir(parents=True)
    cfg = composed(run_dir)
    (run_dir / CONFIG_NAME).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / "checkpoint.json").write_text("{}")
    if finished:
        (run_dir / "result.json").write_text("{}")
    return run_dir


@pytest.mark.parametrize("override", NO_RESULT_CHANGE)
def test_resume_dir_takes_a_setting_that_changes_no_result(tmp_path, override):
    run_dir = saved_run(tmp_path / "run", finished=False)
    resumed = resolve(composed(tmp_path / "x", f"resume={run_dir}", override), [f"resume={run_dir}", override])
    key, value = override.split("=")
    assert resumed.from_checkpoint and not resumed.finished and resumed.run_dir == run_dir
    assert str(OmegaConf.select(resumed.cfg, key)).lower() == value


def test_resume_auto_continues_a_run_asked_for_other_batch_sizes(tmp_path):
    run_dir = saved_run(tmp_path / "run", finished=False)
    resumed = resolve(composed(run_dir, "resume=auto", *NO_RESULT_CHANGE), [])
    assert resumed.from_checkpoint and not resumed.finished
    assert resumed.cfg.model.loss_batch_size == 2 and resumed.cfg.model.prefix_cache_mb == 0


def test_a_finished_run_stays_finished_under_other_batch_sizes(tmp_path):
    run_dir = saved_run(tmp_path / "run", finished=True)
    assert resolve(composed(run_dir, "resume=auto", *NO_RESULT_CHANGE), []).finished
    assert resolve(composed(tmp_path / "x", f"resume={run_dir}", *NO_RESULT_CHANGE), NO_RESULT_CHANGE).finished
    # a search hyperparameter is taken too, but the run then optimizes on from its checkpoint
    more = resolve(composed(run_dir, "resume=auto", "optimizer.n_steps=3"), [])
    assert more.from_checkpoint and not more.finished


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.dtype=bfloat16", "model.dtype=bfloat16 (saved: float32)"),
        ("model.chat_template=false", "model.chat_template=False (saved: True)"),
        ("task.placement=before", "task.placement=before (saved: after)"),
        ("prompt=Think.", "prompt=Think. (saved: None)"),
    ],
)
def test_resume_dir_still_refuses_what_the_saved_steps_depend_on(tmp_path, override, named):
    run_dir = saved_run(tmp_path / "run", finished=False)
    with pytest.raises(ResumeError, match=re.escape(named)):
        resolve(composed(tmp_path / "x", f"resume={run_dir}", override), [f"resume={run_dir}", override])
    with pytest.raises(ResumeError, match=re.escape(override.split("=")[0])):
        resolve(composed(run_dir, "resume=auto", override), [])


def test_resume_dir_continues_a_real_run_with_a_smaller_loss_batch(tmp_path, tiny_models):  # noqa: F811
    """The knob one turns after a GPU out-of-memory: the run goes on from its last step, in its own directory."""
    first = tmp_path / "first"
    runner.run(composed(first, "logger.jsonl=true"))
    before = (first / "history.jsonl").read_text().splitlines()
    shutil.copy(first / "result.json", tmp_path / "result.before.json")
    overrides = [f"resume={first}", "optimizer.n_steps=3", "model.loss_batch_size=2", "model.prefix_cache_mb=0"]
    runner.run(composed(tmp_path / "elsewhere", *overrides), Launch(overrides=tuple(overrides)))
    after = (first / "history.jsonl").read_text().splitlines()
    assert after[:2] == before and [json.loads(line)["step"] for line in after] == [1, 2, 3]
    assert json.loads((first / "result.json").read_text())["steps"] == 3
    saved = OmegaConf.load(first / CONFIG_NAME)
    assert saved.model.loss_batch_size == 2 and saved.model.prefix_cache_mb == 0
    assert not (tmp_path / "elsewhere").exists()

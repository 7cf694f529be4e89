"""A finished run resumed with other evaluation settings (what rerunning a sweep with a transfer model or a
larger evaluation.n_test does): it is not optimized again, and only the missing evaluations run."""

import json

import pytest

from greater.lifecycle import plan, runner
from greater.lifecycle.launch import Launch
from greater.lifecycle.resume import resolve
from tests.test_runner import composed, tiny_models  # noqa: F401  (a fixture)


@pytest.fixture
def run_dir(tmp_path, tiny_models):  # noqa: F811
    """A finished two-step run evaluated on the first 2 of its 3 test examples, which a test may resume."""
    runner.run(composed(tmp_path / "run", "evaluation.n_test=2", "evaluation.evaluate_initial=false"))
    tiny_models.clear()  # what the test sees loading is the resumed run's
    return tmp_path / "run"


@pytest.fixture
def calls(monkeypatch):
    """Every evaluation the plan runs (a batch at a time), as (model, test example ids)."""
    calls = []
    evaluate = plan.evaluate_in_batches

    def recorded(lm, task, examples, *args, **kwargs):
        calls.append((lm.name, [ex.id for ex in examples]))
        return evaluate(lm, task, examples, *args, **kwargs)

    monkeypatch.setattr(plan, "evaluate_in_batches", recorded)
    return calls


def rerun(run_dir, *overrides):
    """What rerunning a multirun does to one of its jobs: resume=auto in the job's own directory."""
    return runner.run(composed(run_dir, "resume=auto", "evaluation.evaluate_initial=false", *overrides))


def files(run_dir):
    return {name: (run_dir / name).read_bytes() for name in ("history.jsonl", "checkpoint.json")}


def test_a_transfer_model_added_later_is_the_only_work_done(run_dir, calls, tiny_models):  # noqa: F811
    before, saved = files(run_dir), (run_dir / "predictions_smollm2-135m_final.jsonl").read_bytes()
    rerun(run_dir, "evaluation.n_test=2", "evaluation.models=[gemma3-270m]")
    assert tiny_models == ["gemma3-270m"]  # the optimizing model is not even loaded
    assert [model for model, _ in calls] == ["gemma3-270m"]
    assert files(run_dir) == before  # no step was run again
    assert (run_dir / "predictions_smollm2-135m_final.jsonl").read_bytes() == saved
    result = json.loads((run_dir / "result.json").read_text())
    rows = {(r["model"], r["prompt_kind"]): r["n"] for r in result["test"]}
    # evaluate_initial=false and the prompt changed: no initial row (the final row once stood in for it)
    assert rows == {(m, "final"): 2 for m in ("smollm2-135m", "gemma3-270m")}
    assert result["steps"] == 2


def test_a_larger_test_set_evaluates_only_the_new_examples(run_dir, calls, tiny_models):  # noqa: F811
    saved = (run_dir / "predictions_smollm2-135m_final.jsonl").read_text().splitlines()
    rerun(run_dir, "evaluation.n_test=3")
    assert len(calls) == 1 and len(calls[0][1]) == 1  # the third test example only
    lines = (run_dir / "predictions_smollm2-135m_final.jsonl").read_text().splitlines()
    assert lines[:2] == saved and len(lines) == 3
    assert calls[0][1] == [json.loads(lines[2])["id"]]
    row = json.loads((run_dir / "result.json").read_text())["test"][0]
    assert row["n"] == 3 and row["acc"] == sum(json.loads(line)["correct"] for line in lines) / 3


def test_a_rerun_with_the_same_settings_does_nothing(run_dir, calls, tiny_models):  # noqa: F811
    result = (run_dir / "result.json").read_text()
    rerun(run_dir, "evaluation.n_test=2")
    assert tiny_models == [] and calls == []
    assert json.loads((run_dir / "result.json").read_text())["test"] == json.loads(result)["test"]


def test_another_answer_mode_evaluates_every_example_again(run_dir, calls):
    rerun(run_dir, "evaluation.n_test=2", "evaluation.max_answer_tokens=5")
    assert [len(ids) for _, ids in calls] == [2]


def test_a_change_to_the_search_is_no_finished_run(run_dir):
    assert resolve(composed(run_dir, "resume=auto", "evaluation.n_test=2"), []).finished
    resumed = resolve(composed(run_dir, "resume=auto", "evaluation.n_test=2", "optimizer.n_steps=3"), [])
    assert not resumed.finished and resumed.from_checkpoint  # continues the search from its checkpoint
    assert not resolve(composed(run_dir, "evaluation.n_test=2"), []).finished  # a single run without resume


def test_another_dev_metric_picks_again_from_the_checkpoint(run_dir):
    resumed = resolve(
        composed(run_dir, "resume=auto", "evaluation.n_test=2", "evaluation.dev_metric=teacher_forced"), []
    )
    assert not resumed.finished and resumed.from_checkpoint  # the final pick is redone, the saved steps are kept


def test_a_setting_added_to_greater_after_the_run_keeps_it_finished(run_dir):
    saved = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(saved.replace("  reuse_reasoning: false\n", ""))  # an older greater's
    assert resolve(composed(run_dir, "resume=auto", "evaluation.n_test=2"), []).finished
    (run_dir / "config.yaml").write_text(saved.replace("max_reasoning_tokens: 4", "max_reasoning_tokens: 5"))
    with pytest.raises(ValueError, match="max_reasoning_tokens: 5 -> 4"):
        resolve(composed(run_dir, "resume=auto", "evaluation.n_test=2"), [])


def test_jobs_of_a_sweep_share_the_evaluation_of_the_same_prompt(tmp_path, tiny_models, calls):  # noqa: F811
    launch = Launch(multirun=True, sweep_dir=tmp_path / "sweep", mode="MULTIRUN")
    jobs = [("0", "seed=0"), ("1", "seed=0"), ("2", "seed=1")]  # zs_cot: the final prompt is the initial one
    for name, seed in jobs:
        cfg = composed(tmp_path / "sweep" / name, "optimizer=zs_cot", seed, "evaluation.models=[gemma3-270m]")
        runner.run(cfg, launch)
    assert [model for model, _ in calls] == ["smollm2-135m", "gemma3-270m"] * 2  # job 1 evaluated nothing
    assert tiny_models == ["smollm2-135m", "gemma3-270m", "smollm2-135m", "smollm2-135m", "gemma3-270m"]
    first, second = (json.loads((tmp_path / "sweep" / n / "result.json").read_text())["test"] for n in "01")
    assert [(r["model"], r["acc"], r["n"]) for r in first] == [(r["model"], r["acc"], r["n"]) for r in second]
    assert len(list((tmp_path / "sweep" / "evaluations").iterdir())) == 4  # 2 models x 2 splits

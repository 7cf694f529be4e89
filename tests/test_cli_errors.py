"""Bad input fails at start with one line that names the problem (and nothing is run)."""

import pytest

from tests.helpers import SHARED_DATA, error_line, run_cli


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=nope"], "model=nope: no such config in conf/model/; choose from: gemma2-2b,"),
        (["task=bbh/navigte"], "task=bbh/navigte: no such config in conf/task/; did you mean bbh/navigate?"),
        (["optimizer.topkk=3"], "Could not override 'optimizer.topkk': Key 'topkk' not in 'GreaterConfig'"),
        (["optimizer.topk=abc"], "Error merging override optimizer.topk=abc"),
        (["task.n_trian=3"], "Could not override 'task.n_trian'"),
        # checked by greater/lifecycle/validate.py before the data or the model loads
        (["prompt="], "error: prompt='': the starting prompt must have at least one token; pass one, e.g. prompt="),
        (["prompt='  '"], "error: prompt='  ': the starting prompt must have at least one token"),
        (["model.loss_batch_size=0"], "error: model.loss_batch_size=0: set it >= 1 (null: model.batch_size)"),
        (
            ["logger.wandb_group=Bob's runs"],  # a lexer error: the key, and the spelling that works
            "logger.wandb_group: Hydra cannot read this value (an apostrophe, quote, bracket or parenthesis needs it "
            'quoted); write it as "logger.wandb_group=\\"Bob\'s runs\\""',
        ),
    ],
)
def test_config_errors_name_the_problem(args, expected, tmp_path):
    proc = run_cli([*args, f"hydra.run.dir={tmp_path}"], timeout=120)
    assert proc.returncode != 0
    assert expected in error_line(proc)
    assert not (tmp_path / "result.json").exists()


def test_missing_data_directory(tmp_path):
    proc = run_cli(
        ["task=bbh/causal_judgement", f"data_dir={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path}"], timeout=120
    )
    assert proc.returncode == 1
    line = error_line(proc)
    assert line.startswith("error:") and "nowhere" in line and "data_dir" in line


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_n_train_larger_than_the_data(tmp_path):
    proc = run_cli(
        ["task=bbh/causal_judgement", f"data_dir={SHARED_DATA}", "task.n_train=100000", f"hydra.run.dir={tmp_path}"],
        timeout=120,
    )
    assert proc.returncode == 1
    line = error_line(proc)
    assert line.startswith("error:") and "n_train" in line and "100000" in line


def test_unknown_transfer_model(tmp_path):
    from greater.models.registry import load_model_config

    with pytest.raises(ValueError, match=r"unknown model 'nope'; choose from: .*smollm2-135m"):
        load_model_config("nope")

"""The ablation's table (scripts/recipes/ablation.py) from run directories: pooled accuracy, the paired
change against the reference on the same examples, and arms not run said as such."""

from recipes.ablation import ARMS, run_arm, run_dir, table
from tests.recipes import load_script
from tests.test_collect import write_result

# Four test examples per seed. Seed 0: the reference right on q0 q1, keep_current on q1 q2 q3
# -> keep_current wins q2 q3, loses q0. Seed 1: both right on q0 only -> no change.
MARKS = {
    ("reference", 0): [True, True, False, False],
    ("reference", 1): [True, False, False, False],
    ("keep_current", 0): [False, True, True, True],
    ("keep_current", 1): [True, False, False, False],
}


def runs(out):
    for (arm, seed), marks in MARKS.items():
        target = run_dir(out, "synthetic/t1", arm, seed)
        write_result(target, "synthetic/t1", "m", [("m", "final", 0)], seed=seed, correct={"m": marks})


def test_the_table_pools_seeds_and_pairs_examples_with_the_reference(tmp_path):
    runs(tmp_path)
    rows = {line.split(" | ")[0].strip("| "): line for line in table(tmp_path, "synthetic/t1", [0, 1])[4:]}
    assert set(rows) == set(ARMS)
    assert "| 0.375 (3/8) |" in rows["reference"] and "| - |" in rows["reference"]
    assert "| 0.500 (4/8) |" in rows["keep_current"] and "| +2 / -1 |" in rows["keep_current"]
    assert "not run" in rows["zero_shot"]


def test_a_finished_arm_is_not_run_again(tmp_path, capsys):
    runs(tmp_path)
    missing = tmp_path / "no_run.py"  # an entry point that fails at once: each run prints its return code
    run_arm(tmp_path, "synthetic/t1", "reference", 0, missing)
    assert capsys.readouterr().out == ""  # the reference's seed 0 has a result.json: nothing ran
    run_arm(tmp_path, "synthetic/t1", "zero_shot", 0, missing)
    assert "synthetic/t1 zero_shot seed 0: rc 2" in capsys.readouterr().out


def test_table_only_prints_the_table_from_runs_already_done(tmp_path, capsys):
    runs(tmp_path)
    load_script("ablation").main(["--task", "synthetic/t1", "--out", str(tmp_path), "--table-only"])
    assert "| keep_current |" in capsys.readouterr().out

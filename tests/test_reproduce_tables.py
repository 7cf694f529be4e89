"""The tables (scripts/recipes: tables, statistics, mini_tables; scripts/reproduce_tables.py): averages over
seeds and tasks, paper columns, transfer rows, and the miniature profile (pooled intervals, exact McNemar
against hand computations, reproducible output)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from greater.compare.collect import collect
from greater.writers.local import ModelWriter, TaskModelWriter
from recipes.methods import display_name, ordered, paper_row, split_name
from recipes.mini_tables import MINI_ROOTS
from recipes.paper import PAPER_BBH_TASKS
from recipes.statistics import accuracy_table, final_rows, mcnemar_exact, paired_tests
from recipes.tables import table1, table2
from tests.recipes import load_script
from tests.test_collect import write_result

ROOT = Path(__file__).resolve().parents[1]


def main(argv):
    return load_script("reproduce_tables").main(argv)


def write(path, task, model, optimizer, seed, rows, writer=None):
    rows = [(m, "final", acc) for m, acc in rows]
    write_result(path, task, model, rows, optimizer=optimizer, seed=seed, writer=writer)


def self_writer(model):
    """The writer a text method gets by default: the task model itself (runner: writer_for)."""
    return TaskModelWriter(SimpleNamespace(name=model))


def other_writer(model):
    """Another model config as the writer (optimizer.writer=<model>)."""
    return ModelWriter(SimpleNamespace(name=model))


@pytest.fixture
def results(tmp_path):
    write(tmp_path / "r1", "bbh/navigate", "gemma2-9b", "greater", 0, [("gemma2-9b", 0.6), ("llama3-8b", 0.5)])
    write(tmp_path / "r2", "bbh/navigate", "gemma2-9b", "greater", 1, [("gemma2-9b", 0.8)])
    write(tmp_path / "r3", "bbh/snarks", "gemma2-9b", "greater", 0, [("gemma2-9b", 0.4)])
    write(tmp_path / "r4", "gsm8k", "gemma2-9b", "zs_cot", 0, [("gemma2-9b", 0.9)])
    return tmp_path


def test_table1_averages_seeds_then_tasks_and_adds_the_paper(results):
    t = table1(collect(results))
    # navigate: mean(60, 80) = 70; snarks: 40; BBH = mean(70, 40) = 55
    assert t.loc["GReaTer", ("gemma2-9b", "BBH")] == 55.0
    assert t.loc["GReaTer", ("gemma2-9b", "BBH (paper)")] == 76.6
    assert t.loc["ZS-CoT", ("gemma2-9b", "GSM8K")] == 90.0
    assert t.loc["ZS-CoT", ("gemma2-9b", "GSM8K (paper)")] == 88.6


def test_table2_has_only_transfer_rows(results):
    t = table2(collect(results))
    assert list(t.index) == [("GReaTer", "gemma2-9b -> llama3-8b")]
    assert t.loc[("GReaTer", "gemma2-9b -> llama3-8b"), "bbh/navigate"] == 50.0


def test_cli_writes_markdown_and_latex(results, tmp_path, capsys):
    assert main([str(results), "--out", str(tmp_path / "tables")]) == 0
    assert "Table 2: transfer" in (tmp_path / "tables.md").read_text()
    assert "\\begin{tabular}" in (tmp_path / "tables.tex").read_text()


def test_bbh_average_counts_only_the_papers_21_tasks(tmp_path):
    write(tmp_path / "a", "bbh/navigate", "gemma2-9b", "greater", 0, [("gemma2-9b", 0.6)])
    write(tmp_path / "b", "bbh/word_sorting", "gemma2-9b", "greater", 0, [("gemma2-9b", 0.0)])
    t = table1(collect(tmp_path))
    assert len(PAPER_BBH_TASKS) == 21 and "word_sorting" not in PAPER_BBH_TASKS
    assert t.loc["GReaTer", ("gemma2-9b", "BBH")] == 60.0  # word_sorting's 0 is not averaged in
    assert t.loc["GReaTer", ("gemma2-9b", "BBH (not in the paper's 21)")] == 0.0


def test_method_names_round_trip_and_writer_rows_sit_after_their_method():
    assert display_name("apo", "gemma3-270m") == "APO (writer: gemma3-270m)"
    for name in ["APO (writer: gemma3-270m)", "GEPA", "my_plugin", "my (odd) plugin"]:
        method, writer = split_name(name)
        assert display_name(method, writer) == name  # a plugin's config name is its display name
    shown = ["GReaTer", "my_plugin", "GEPA (writer: smollm2-135m)", "APO (writer: gemma3-270m)", "APO", "GEPA"]
    assert ordered(shown) == ["APO", "APO (writer: gemma3-270m)", "GEPA", "GEPA (writer: smollm2-135m)"] + [
        "GReaTer",
        "my_plugin",
    ]
    assert paper_row("APO (writer: gemma3-270m)") == "APO (GPT-4)" and paper_row("APO") == "APO"
    assert paper_row("PE2 (writer: gemma3-270m)") is None  # the paper has no PE2 with a stronger writer


@pytest.fixture
def writer_runs(tmp_path):
    """Llama-3-8B -> Gemma-2-9B transfer runs on one task: APO writing for itself (two seeds), APO with
    another writer, GEPA reflecting on itself, and GReaTer (no writer at all)."""
    task, src, dst = "bbh/navigate", "llama3-8b", "gemma2-9b"
    write(tmp_path / "apo_0", task, src, "apo", 0, [(src, 0.5), (dst, 0.4)], self_writer(src))
    write(tmp_path / "apo_1", task, src, "apo", 1, [(src, 0.7), (dst, 0.6)], self_writer(src))
    write(tmp_path / "apo_w", task, src, "apo", 0, [(src, 0.8), (dst, 0.75)], other_writer("gemma3-270m"))
    write(tmp_path / "gepa_0", task, src, "gepa", 0, [(src, 0.3), (dst, 0.25)], self_writer(src))
    write(tmp_path / "greater_0", task, src, "greater", 0, [(src, 0.9), (dst, 0.85)])
    return tmp_path


def test_writer_runs_are_rows_of_their_own_beside_the_papers_apo_gpt4(writer_runs, tmp_path, capsys):
    results = collect(writer_runs)
    assert set(results.writer.dropna()) == {"gemma3-270m"}  # the task model as writer is no writer
    t2 = table2(results)
    direction = "llama3-8b -> gemma2-9b"
    assert [m for m, _ in t2.index] == ["APO", "APO (writer: gemma3-270m)", "GEPA", "GReaTer"]
    assert t2.loc[("APO", direction), "bbh/navigate"] == 50.0  # mean(40, 60): the self-written seeds only
    assert t2.loc[("APO (writer: gemma3-270m)", direction), "bbh/navigate"] == 75.0
    assert t2.loc[("GEPA", direction), "bbh/navigate"] == 25.0
    # the published averages stay in their own column: APO (GPT-4) beside the writer row, none for GEPA
    paper = t2["average (paper)"]
    assert paper[("APO (writer: gemma3-270m)", direction)] == 69.8 and paper[("APO", direction)] == 69.4
    assert paper[("GReaTer", direction)] == 76.2 and paper.isna()[("GEPA", direction)]
    t1 = table1(results)
    assert t1.loc["APO (writer: gemma3-270m)", ("llama3-8b", "BBH")] == 80.0
    assert t1.loc["APO", ("llama3-8b", "BBH")] == 60.0 and t1.loc["APO", ("llama3-8b", "BBH (paper)")] == 62.7
    assert t1.isna().loc["APO (writer: gemma3-270m)", ("llama3-8b", "BBH (paper)")]  # Table 1 has no such row
    assert main([str(writer_runs), "--out", str(tmp_path / "tables")]) == 0
    shown = capsys.readouterr().out
    assert "| ('APO (writer: gemma3-270m)', 'llama3-8b -> gemma2-9b') |" in shown and "| GEPA " in shown


# The miniature profile. Ten test examples per seed; GReaTer against ZS-CoT on task t1:
#   seed 0: GReaTer right on q0-q6, ZS-CoT on q0-q2 and q7 -> GReaTer only: q3-q6 (4), ZS-CoT only: q7 (1)
#   seed 1: both right on q0-q5                             -> no discordant pair
# so b = 4, c = 1 and the exact two-sided p = 2 * (C(5,0) + C(5,1)) / 2^5 = 12 / 32 = 0.375.
def marks(right):
    return [i in right for i in range(10)]


MINI = {
    ("greater", 0): marks(range(7)),
    ("greater", 1): marks(range(6)),
    ("zs_cot", 0): marks([0, 1, 2, 7]),
    ("zs_cot", 1): marks(range(6)),
}


@pytest.fixture
def mini_runs(tmp_path):
    root = tmp_path / "runs"
    for (method, seed), right in MINI.items():
        correct = {"smollm2-135m": right, "gemma3-270m": right[::-1]}
        compute = {"task.tokens_generated": 1000.0 if method == "greater" else 0.0, "task.rollouts": 40.0}
        write_result(
            root / f"{method}_{seed}",
            "synthetic/t1",
            "smollm2-135m",
            [("smollm2-135m", "initial", 0.3), ("smollm2-135m", "final", 0), ("gemma3-270m", "final", 0)],
            optimizer=method,
            seed=seed,
            correct=correct,
            compute=compute,
        )
    return root


def test_mcnemar_matches_hand_computation_and_scipy():
    from scipy.stats import binomtest

    assert mcnemar_exact(4, 1) == pytest.approx(0.375)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0  # capped at 1
    for b, c in [(10, 2), (0, 7), (25, 14)]:
        assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue)


def test_mini_tables_pool_seeds_and_pair_the_same_examples(mini_runs):
    from scipy.stats import binomtest

    rows = final_rows(collect(mini_runs))
    acc = accuracy_table(rows).set_index(["method", "eval_model"])
    ours = acc.loc[("GReaTer", "smollm2-135m")]
    assert ours.n == 20 and ours.acc == pytest.approx(65.0)  # (7 + 6) / 20, pooled over the seeds
    low, high = binomtest(13, 20).proportion_ci(method="wilson")
    assert (ours.ci_low, ours.ci_high) == pytest.approx((100 * low, 100 * high), abs=1e-6)
    assert ours.tokens == 1000.0 and acc.loc[("ZS-CoT", "smollm2-135m")].tokens == 0.0
    tests = paired_tests(rows).set_index(["eval_model", "baseline", "task"])
    own = tests.loc[("smollm2-135m", "ZS-CoT", "synthetic/t1")]
    assert (own.pairs, own.greater_only, own.baseline_only) == (20, 4, 1)
    assert own.p_value == pytest.approx(0.375)
    # transfer: the reversed marks -> seed 0: GReaTer q3-q9, ZS-CoT q2 and q7-q9 -> b = 4 (q3-q6), c = 1 (q2)
    moved = tests.loc[("gemma3-270m", "ZS-CoT", "synthetic/t1")]
    assert (moved.greater_only, moved.baseline_only) == (4, 1)


def test_mini_profile_writes_tables_figures_and_is_reproducible(mini_runs, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "mini_tables.md").write_text(
        "# Reading\n\nkept\n\n<!-- mini tables: start -->\nold\n<!-- mini tables: end -->\n"
    )
    assert main(["--profile", "mini", str(mini_runs), "--out", str(out)]) == 0
    text = (out / "mini_tables.md").read_text()
    assert text.startswith("# Reading\n\nkept") and "old" not in text
    assert "65.0 [" in text and "0.375" in text
    assert "Table 2 (miniature): optimized on smollm2-135m, evaluated on gemma3-270m" in text
    assert "Published numbers" in text and "76.6" in text
    figures = ["mini_table1_smollm2-135m.png", "mini_compute.png", "mini_table2_smollm2-135m_to_gemma3-270m.png"]
    for name in figures + ["mini_accuracy.csv", "mini_paired_tests.csv", "mini_runs.csv"]:
        assert (out / name).stat().st_size > 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["--profile", "mini", str(mini_runs), "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # the same runs give the same files


# Writer rows in the miniature, seed 0 against GReaTer's q0-q6: APO writing for itself right on q0-q4
# (GReaTer only: q5, q6), APO with Gemma writing right on q0-q8 (APO only: q7, q8), GEPA on q0-q1 (GReaTer only:
# q2-q6, p = 2 / 2^5 = 0.0625).
WRITTEN = {
    ("apo", None): marks(range(5)),
    ("apo", "gemma3-270m"): marks(range(9)),
    ("gepa", None): marks([0, 1]),
}


@pytest.fixture
def mini_writer_runs(mini_runs):
    for (method, writer), right in WRITTEN.items():
        compute = {"writer.calls": 6.0, "writer.tokens_generated": 300.0} if writer else None
        write_result(
            mini_runs / f"{method}_{writer}_0",
            "synthetic/t1",
            "smollm2-135m",
            [("smollm2-135m", "final", 0), ("gemma3-270m", "final", 0)],
            optimizer=method,
            correct={"smollm2-135m": right, "gemma3-270m": right[::-1]},
            compute=compute,
            writer=other_writer(writer) if writer else self_writer("smollm2-135m"),
        )
    return mini_runs


def test_mini_tables_keep_writer_runs_apart_in_accuracy_and_tests(mini_writer_runs, tmp_path):
    results = collect(mini_writer_runs)
    rows = final_rows(results)
    acc = accuracy_table(rows).set_index(["method", "eval_model"])
    assert acc.loc[("APO", "smollm2-135m")].acc == 50.0 and acc.loc[("APO", "smollm2-135m")].n == 10
    assert acc.loc[("APO (writer: gemma3-270m)", "smollm2-135m")].acc == 90.0
    assert acc.loc[("GEPA", "smollm2-135m")].acc == 20.0
    assert acc.loc[("GReaTer", "smollm2-135m")].acc == pytest.approx(65.0)  # unchanged by the new rows
    tests = paired_tests(rows).set_index(["eval_model", "baseline", "task"])
    counts = {
        b: tuple(tests.loc[("smollm2-135m", b, "synthetic/t1"), ["pairs", "greater_only", "baseline_only"]])
        for b in ["APO", "APO (writer: gemma3-270m)", "GEPA"]
    }
    assert counts == {"APO": (10, 2, 0), "APO (writer: gemma3-270m)": (10, 0, 2), "GEPA": (10, 5, 0)}
    assert tests.loc[("smollm2-135m", "GEPA", "synthetic/t1")].p_value == pytest.approx(0.0625)
    out = tmp_path / "results"
    assert main(["--profile", "mini", str(mini_writer_runs), "--out", str(out)]) == 0
    table = (out / "mini_tables.md").read_text().split("### Table 1 (miniature): optimized and evaluated on smollm2")[1]
    names = [line.split("|")[1].strip() for line in table.split("\n\n")[1].splitlines()[2:]]
    assert names == ["ZS-CoT", "APO", "APO (writer: gemma3-270m)", "GEPA", "GReaTer"]
    assert "| APO (GPT-4) " in (out / "mini_tables.md").read_text()  # the published row, in its own table


def test_mini_profile_without_runs_is_a_one_line_error(tmp_path, capsys):
    assert main(["--profile", "mini", str(tmp_path / "none"), "--out", str(tmp_path)]) == 1
    assert "no result.json" in capsys.readouterr().err


MINI_SWEEPS = ["mini_table1", "mini_table2", "mini_table1_writer", "mini_table2_writer"]


def sweep_of(experiment):
    """The Hydra settings `python run.py -m experiment=<experiment>` sweeps with (what it inherits included)."""
    from hydra import compose, initialize_config_dir

    from greater.api import conf_dir, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=[f"experiment={experiment}"], return_hydra_config=True).hydra


@pytest.mark.parametrize("experiment", MINI_SWEEPS)
def test_mini_experiments_compose_for_every_grid_point(experiment):
    """Every optimizer and task the sweep names exists and validates, the protocol is what the tables say it
    is, the writer sweeps give APO and GEPA the other embedded model as writer, and --profile mini reads every
    sweep's dir."""
    import greater
    from greater.lifecycle.validate import validate

    hydra = sweep_of(experiment)
    assert Path(hydra.sweep.dir) in MINI_ROOTS  # a rerun of the sweep lands where the tables look
    sweep = hydra.sweeper.params
    writers = {"mini_table1_writer": "gemma3-270m", "mini_table2_writer": "smollm2-135m"}
    methods = sweep.optimizer.split(",")
    assert str(sweep.seed) == "0,1" and next(iter(sweep)) == "seed"  # seed 0 of every method first
    if experiment in writers:  # the text method of the paper's Table 2 and GEPA, with the other model writing
        assert methods == ["apo_cpu", "gepa_cpu"] and sweep["optimizer.writer"] == writers[experiment]
    else:  # every method, GEPA reflecting on itself
        assert len(methods) == 8 and "gepa_cpu" in methods and "optimizer.writer" not in sweep
    point = [f"optimizer.writer={writers[experiment]}"] if experiment in writers else []
    for optimizer in methods:
        for task in sweep.task.split(","):
            overrides = [f"experiment={experiment}", f"optimizer={optimizer}", f"task={task}", *point]
            cfg = greater.compose(overrides)
            validate(cfg)
            assert cfg.max_reasoning_tokens == 64 and cfg.evaluation.n_test == 100
            assert cfg.optimizer.budget.max_rollouts == 32
            if experiment.startswith("mini_table1"):  # evaluated on Gemma too: Table 2's SmolLM2 -> Gemma
                assert cfg.model.name == "smollm2-135m" and list(cfg.evaluation.models) == ["gemma3-270m"]
            else:  # the transfer direction: optimized on Gemma, evaluated on both
                assert cfg.model.name == "gemma3-270m" and list(cfg.evaluation.models) == ["smollm2-135m"]
            if point:  # the writer is the model the task model is evaluated beside, never itself
                assert cfg.optimizer.writer == writers[experiment] != cfg.model.name

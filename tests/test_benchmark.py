"""The benchmark on a tiny model: the three patterns do the same step (the same tokens, the same gradient
inputs, the engine's own settings), and the summary has the keys the README quotes."""

import json
from dataclasses import asdict

import pytest
import torch

import greater.optimizers.greater.optimizer as engine
from greater.engine.packed import PackedLinear
from greater.optimizers.greater.config import GreaterConfig
from greater.optimizers.greater.optimizer import GreaterOptimizer
from greater.tasks.base import Example, Task
from recipes import benchmark, patterns
from recipes.patterns import EngineSettings
from tests.recipes import load_script
from tests.tiny import tiny_language_model

# Not the defaults (0.2 and 0.2), so a pattern that falls back to any default differs from the engine.
SETTINGS = {"answer_temperature": 0.37, "control_weight": 0.13}


def parity() -> Task:
    examples = [Example(f"Is {n} even?", "Yes" if n % 2 == 0 else "No", id=str(n)) for n in range(3)]
    return Task("parity", train=examples, test=[], initial_prompt="Think step by step.", answer_type="yes_no")


def optimizer(**overrides) -> GreaterOptimizer:
    small = {"topk": 6, "n_groups": 2, "group_size": 2, "min_candidates": 3, "token_filter": "ascii"}
    return GreaterOptimizer(GreaterConfig(**{**small, **SETTINGS, **overrides}))


def spy_on_gradients(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every gradient the patterns take: (pattern, sequences, control weight, temperature, whether the model's
    packed linear layers were on)."""
    calls: list[tuple] = []

    def spy(name, fn):
        def wrapped(lm, seqs, spans, starts, prompt, j, control_weight, temperature):
            packed = any(m.enabled for m in lm.model.modules() if isinstance(m, PackedLinear))
            calls.append((name, [list(s) for s in seqs], control_weight, temperature, packed))
            return fn(lm, seqs, spans, starts, prompt, j, control_weight, temperature)

        return wrapped

    monkeypatch.setattr(engine, "position_gradient", spy("ours", engine.position_gradient))
    monkeypatch.setattr(patterns, "position_gradient", spy("floor", patterns.position_gradient))
    monkeypatch.setattr(patterns, "reference_gradient", spy("reference", patterns.reference_gradient))
    return calls


@pytest.fixture(scope="module")
def run():
    lm, opt = tiny_language_model(seed=0), optimizer()
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = spy_on_gradients(monkeypatch)
        result = benchmark.run_patterns(lm, parity(), opt, list(benchmark.PATTERNS), 1, 6, 1)
    settings = {"model": "tiny", "task": "parity", "n_train": 3, "tokens": 6, "repeats": 1}
    return benchmark.summarize(result, lm, settings), lm, opt, result["plan"], calls


@pytest.fixture(scope="module")
def summary(run):
    return run[0]


def test_the_plan_carries_the_optimizers_own_settings(run):
    # the contract: every engine setting the patterns use is read from the optimizer's config, none defaulted
    _, _, opt, plan, _ = run
    settings = asdict(plan.settings)
    assert settings == {name: getattr(opt.config, name) for name in settings}
    assert settings["answer_temperature"] == 0.37 and settings["control_weight"] == 0.13
    assert 1 <= len(plan.candidates) <= opt.config.n_rescore


def test_every_pattern_takes_the_engines_gradient(run):
    # the same sequences, at the engine's control weight and answer temperature, in all three patterns
    calls = run[4]
    assert sorted(name for name, *_ in calls) == ["floor", "floor", "ours", "reference"]  # floor, floor_kernels
    ours = next(c for c in calls if c[0] == "ours")
    for name, seqs, weight, temperature, _ in calls:
        assert (weight, temperature) == (0.13, 0.37), name
        assert seqs == ours[1], name


def test_the_reference_and_floor_run_transformers_kernels_and_ours_its_own(run):
    # ours and floor_kernels on the packed layers; the reference and the floor on torch's own product
    packed = sorted((name, on) for name, *_, on in run[4])
    assert packed == [("floor", False), ("floor", True), ("ours", True), ("reference", False)]
    assert "ratio_to_floor_kernels" in run[0] and run[0]["settings"]["cpu_kernels"]["packed_layers"] > 0


def test_without_reasoning_the_floor_takes_the_gradient_the_engine_takes(monkeypatch):
    # the control gradient_over_reasoning=false: the answer right after the question, in the floor too
    lm, opt, task = tiny_language_model(seed=0), optimizer(gradient_over_reasoning=False), parity()
    calls = spy_on_gradients(monkeypatch)
    _, plan, _ = benchmark.ours_step(lm, task, opt, 6, 1)
    assert plan.settings.gradient_over_reasoning is False
    with benchmark.without_store(lm):
        patterns.floor_step(lm, benchmark.fresh_scorer(lm, task, opt, 6), plan, 6)
    (_, ours, *_), (_, floor, *_) = calls
    scorer = benchmark.fresh_scorer(lm, task, opt, 6)
    assert ours == floor == scorer.sequences(plan.prompt, [[] for _ in scorer.slots])[0]


def test_engine_settings_name_only_fields_of_the_config():
    names = set(asdict(EngineSettings.of(GreaterConfig())))
    assert names <= set(asdict(GreaterConfig())) and {"answer_temperature", "control_weight"} <= names


def test_every_pattern_generates_the_same_reasoning_tokens(summary):
    generated = {p: sum(row["generated"] for row in stages.values()) for p, stages in summary["stages"].items()}
    assert generated["ours"] == generated["reference"] == generated["floor"] == generated["floor_kernels"] > 0
    assert summary["settings"]["candidates"] >= 1


def test_summary_has_the_ratios_the_readme_quotes(summary):
    assert summary["speedup_vs_reference"] > 0 and summary["ratio_to_floor"] > 0
    # a later step skips the engine's reasoning stage (cached), so it is faster against the same reference
    ours = summary["stages"]["ours"]
    later = sum(row["seconds"] for stage, row in ours.items() if stage not in ("reasoning", "prefixes"))
    reference = sum(row["seconds"] for row in summary["stages"]["reference"].values())
    assert summary["speedup_vs_reference_steady"] == pytest.approx(reference / later)
    assert summary["equal_results"] is True  # re-scoring with reuse gives the rollouts of re-scoring from scratch
    for stages in summary["stages"].values():
        assert all(row["seconds"] >= 0 and row["peak_rss_mb"] > 0 for row in stages.values())
    assert set(summary["stages"]["ours"]) == {"prefixes", "reasoning", "gradient", "proposal", "selection"}
    assert summary["settings"]["engine"]["answer_temperature"] == 0.37  # the JSON says what was run


def test_the_stage_hook_is_cleared_after_the_metered_step(run):
    assert run[2].stages.hook is None


def test_the_reference_pattern_leaves_the_model_frozen(run):
    # reference_step turns weight gradients on for its backward passes; the model must come back frozen
    lm = run[1]
    assert not lm.model.training
    assert not any(p.requires_grad or p.grad is not None for p in lm.model.parameters())


def test_only_the_engine_reads_the_prefix_store(run):
    # ours fills the store in a stage of its own (the questions' chat, once per run); the reference and floor
    # patterns and the from-scratch re-scoring run without it, and the store is back on afterwards
    summary, lm = run[:2]
    ours = summary["stages"]["ours"]
    assert ours["prefixes"]["forwarded"] > 0 and ours["prefixes"]["generated"] == 0
    assert lm.prefixes is not None and len(lm.prefixes.entries) == 3  # one per training question
    assert lm.prefixes.hits > 0  # the last re-scoring (the engine's) read the questions from it


def test_until_stop_cuts_at_the_first_stop_token():
    assert patterns.until_stop([5, 6, 2, 7, 2], {2}) == [5, 6]
    assert patterns.until_stop([5, 6], {2}) == [5, 6]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_device_cuda_without_a_gpu_says_so_in_one_line():
    script = load_script("benchmark")
    with pytest.raises(SystemExit, match=r"^--device cuda: torch sees no CUDA device here"):
        script.load(script.parse(["--device", "cuda"]))


def test_the_floor_always_runs_so_ratio_to_floor_is_always_written():
    # the command names only the reference pattern and expects ratio_to_floor in the JSON
    script = load_script("benchmark")
    assert script.parse(["--pattern", "reference"]).pattern == ["ours", "reference", "floor"]
    assert script.parse(["--pattern", "floor", "ours"]).pattern == ["ours", "floor"]


def test_the_sweep_runs_every_point_at_its_thread_count_and_tabulates_it(monkeypatch):
    lm, seen = tiny_language_model(seed=0), []
    real = benchmark.run_patterns

    def spy(lm, task, opt, patterns, repeats, tokens, position, rescoring_check=True):
        seen.append((torch.get_num_threads(), tokens, len(task.train), opt.config.n_rescore, tuple(patterns)))
        return real(lm, task, opt, patterns, repeats, tokens, position, rescoring_check)

    monkeypatch.setattr(benchmark, "run_patterns", spy)
    before = torch.get_num_threads()
    grid = benchmark.Grid(threads=(1, 2), tokens=(4,), n_train=(3,), n_rescore=(1, 2))
    rows = benchmark.sweep(lm, lambda n: parity(), grid, with_reference=False, position=1)
    assert torch.get_num_threads() == before
    assert seen == [(t, 4, 3, k, ("ours", "floor")) for t in (1, 2) for k in (1, 2)]
    assert [(r["threads"], r["n_rescore"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for row in rows:
        assert 0 < row["ours_later_s"] <= row["ours_first_s"] and row["floor_s"] > 0
        assert row["reference_s"] is None and row["peak_rss_mb"] > 0 and 1 <= row["candidates"] <= row["n_rescore"]
    table = benchmark.sweep_table(rows).splitlines()
    assert len([line for line in table if line.startswith("| ")]) == 1 + len(rows)  # header + one per point
    assert table[2].split(" | ")[8] == "-"  # the skipped reference


def test_the_sweep_row_and_speedups_follow_the_stage_seconds():
    def stage(seconds, generated):
        return {"seconds": seconds, "cpu_seconds": 2 * seconds, "generated": generated, "peak_rss_mb": 10.0}

    ours = {"prefixes": stage(1, 0), "reasoning": stage(3, 40), "gradient": stage(2, 0), "selection": stage(4, 60)}
    summary = {"stages": {"ours": ours, "floor": {"generation": stage(12, 100)}}, "settings": {"candidates": 3}}
    row = benchmark.sweep_row(summary, 2, 64, 8, 3)
    assert (row["ours_first_s"], row["ours_later_s"], row["ours_later_cpu_s"]) == (10, 6, 12)
    assert row["ours_tokens_per_s"] == 10 and row["ours_later_tokens_per_s"] == 10
    assert (row["floor_s"], row["floor_cpu_s"], row["reference_s"]) == (12, 24, None)
    slow = {**row, "threads": 1, "ours_first_s": 16}
    assert benchmark.thread_speedups([slow, row]) == {(64, 8, 3): 1.6}
    assert "- 64 tokens, 8 examples, 3 re-scored: 1.60x" in benchmark.sweep_table([slow, row])


def test_the_sweep_varies_one_axis_at_a_time_around_the_centre_unless_full():
    grid = benchmark.Grid(threads=(1, 2))
    star = [(128, 8, 3), (64, 8, 3), (512, 8, 3), (128, 4, 3), (128, 32, 3), (128, 8, 6)]
    assert grid.points() == [(t, *p) for t in (1, 2) for p in star]
    assert len(benchmark.Grid(full=True).points()) == 2 * 3 * 3 * 2
    # a narrowed axis without the centre's value is held at its first value
    assert benchmark.Grid(threads=(2,), tokens=(64,), n_train=(8,), n_rescore=(3, 6)).points() == [
        (2, 64, 8, 3),
        (2, 64, 8, 6),
    ]


def test_the_sweep_flags_narrow_the_grid():
    args = load_script("benchmark").parse(
        ["--sweep", "--sweep-threads", "2", "--sweep-tokens", "64", "--skip-reference"]
    )
    assert args.sweep and args.skip_reference and args.sweep_threads == [2] and args.sweep_tokens == [64]
    assert args.sweep_n_train == [4, 8, 32] and args.sweep_n_rescore == [3, 6]


def test_a_sweeps_json_redraws_its_table_and_the_readme_section_keeping_the_text_around(tmp_path):
    point = {"tokens": 64, "n_train": 8, "n_rescore": 3, "candidates": 3}
    times = {"ours_tokens_per_s": 50.0, "floor_s": 12.0, "floor_cpu_s": 24.0, "peak_rss_mb": 900.0}
    rows = [
        {
            "threads": threads,
            **point,
            "ours_first_s": first,
            "ours_first_cpu_s": first,
            "ours_later_s": first / 2,
            "ours_later_cpu_s": first / 2,
            **times,
            "reference_s": None,
            "reference_cpu_s": None,
        }
        for threads, first in ((1, 16.0), (2, 10.0))
    ]
    (tmp_path / "sweep.json").write_text(json.dumps({"rows": rows}))
    start, end = benchmark.README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# Speed\n\nbefore\n{start}\nold table\n{end}\nafter\n")
    script = load_script("benchmark")
    args = ["--sweep", "--from-json", str(tmp_path / "sweep.json"), "--table", str(tmp_path / "t.md")]
    script.main([*args, "--readme", str(readme)])
    table = (tmp_path / "t.md").read_text()
    assert table == benchmark.sweep_table(rows) and "- 64 tokens, 8 examples, 3 re-scored: 1.60x" in table
    text = readme.read_text()
    assert text == f"# Speed\n\nbefore\n{start}\n{table.rstrip()}\n{end}\nafter\n"
    script.main([*args, "--readme", str(readme)])  # again: the same bytes
    assert readme.read_text() == text


@pytest.mark.parametrize("content", [None, "not json", '{"model": "m"}'])
def test_a_missing_or_malformed_sweep_json_stops_with_one_line_naming_it(tmp_path, content):
    path = tmp_path / "sweep.json"
    if content is not None:
        path.write_text(content)
    readme = tmp_path / "README.md"
    readme.write_text("kept\n")
    with pytest.raises(SystemExit) as stop:
        load_script("benchmark").main(["--sweep", "--from-json", str(path), "--readme", str(readme)])
    message = str(stop.value)
    assert str(path) in message and "--from-json" in message and "\n" not in message
    assert readme.read_text() == "kept\n"  # nothing written

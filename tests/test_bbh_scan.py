"""The BBH scan: its rows are what `evaluate_prompt` measures, mode by mode (a contract on a tiny model with
golds longer than the default answer cap), and its page renders from the CSV the scan appends to."""

from dataclasses import asdict, replace

import pandas as pd
import pytest

from greater.config import EvaluationConfig
from greater.evaluation.evaluator import answer_token_limit, evaluate_prompt
from greater.tasks.base import Example, Task
from recipes.scan import evaluate_modes, lower_bounds, page, scan_task
from tests.recipes import load_script

ROWS = [
    # a multiple-choice task has both modes, a free-text one only `generate`
    {"task": "navigate", "model": "m", "n": 40, "options": 2, "majority": 0.525, "chance": 0.5,
     "generate_acc": 0.2, "generate_ci_low": 0.105, "generate_ci_high": 0.3476,
     "loglik_acc": 0.425, "loglik_ci_low": 0.2851, "loglik_ci_high": 0.578, "seconds": 74.1},
    {"task": "dyck_languages", "model": "m", "n": 40, "options": 0, "majority": 0.1, "chance": 0.0,
     "generate_acc": 0.0, "generate_ci_low": 0.0, "generate_ci_high": 0.0876, "seconds": 187.6},
]  # fmt: skip
WORDS = ["apple", "banana", "cherry", "date", "elder", "fig"]


@pytest.fixture(scope="module")
def long_golds() -> Task:
    """Word sorting in miniature: closed options (so both modes apply), each gold over 16 tokens."""
    options = [" ".join(sorted(WORDS[i : i + 3])) for i in range(3)]
    examples = [Example(f"Sort: {' '.join(reversed(o.split()))}", o, id=f"q{i}") for i, o in enumerate(options)]
    return Task("sorting", train=examples[:1], test=examples, answer_type="text", options=options)


def spy_on_generate(lm, monkeypatch) -> list[int]:
    """The max_new_tokens of every generation the model is asked for."""
    asked: list[int] = []
    generate = lm.generate

    def spy(inputs, max_new_tokens, *args, **kwargs):
        asked.append(max_new_tokens)
        return generate(inputs, max_new_tokens, *args, **kwargs)

    monkeypatch.setattr(lm, "generate", spy)
    return asked


@pytest.fixture(scope="module")
def measured(tiny_lm, long_golds):
    """placement -> (the scan's results, evaluate_prompt's per mode, the generation lengths each asked for)."""
    out, cfg, prompt = {}, EvaluationConfig(), long_golds.initial_prompt
    for placement in ("after", "before"):
        with pytest.MonkeyPatch.context() as monkeypatch:
            asked = spy_on_generate(tiny_lm, monkeypatch)
            scanned = evaluate_modes(tiny_lm, long_golds, long_golds.test, prompt, cfg, 4, placement)
            scan_asked, asked[:] = list(asked), []
            alone = {
                mode: evaluate_prompt(
                    tiny_lm, long_golds, long_golds.test, prompt, replace(cfg, mode=mode), 4, placement
                )
                for mode in ("generate", "loglik")
            }
        out[placement] = scanned, alone, scan_asked, list(asked)
    return out


@pytest.mark.parametrize("placement", ["after", "before"])
def test_the_scan_reads_what_evaluate_prompt_reads_in_both_modes(tiny_lm, long_golds, measured, placement):
    assert answer_token_limit(tiny_lm, long_golds, 16) > 16  # golds longer than the default answer cap
    scanned, alone, scan_asked, asked = measured[placement]
    for mode in ("generate", "loglik"):
        assert [asdict(p) for p in scanned[mode].predictions] == [asdict(p) for p in alone[mode].predictions], mode
    # one reasoning serves both modes, then the answer budget evaluate_prompt uses (not a fixed 16);
    # evaluate_prompt itself reads its answers from the reasoning's cache, so only its loglik pass generates
    assert scan_asked == [4, answer_token_limit(tiny_lm, long_golds, 16)] and asked == [4]


def test_a_scan_row_is_evaluate_prompts_accuracy_and_interval(tiny_lm, long_golds, measured):
    row, alone = scan_task(tiny_lm, long_golds, 4), measured["after"][1]
    for mode, result in alone.items():
        assert (row[f"{mode}_acc"], row[f"{mode}_ci_low"], row[f"{mode}_ci_high"]) == (
            result.accuracy,
            result.ci_low,
            result.ci_high,
        )
    assert row["answer_tokens"] == answer_token_limit(tiny_lm, long_golds, 16) and row["options"] == 3


def test_a_free_text_task_is_read_only_by_generation(tiny_lm, long_golds):
    row = scan_task(tiny_lm, replace(long_golds, options=None), 4)
    assert "generate_acc" in row and "loglik_acc" not in row and row["chance"] == 0.0


def test_rows_measured_with_the_old_16_token_answer_are_marked_lower_bounds():
    old = pd.DataFrame([{"task": "word_sorting"}, {"task": "navigate"}])
    (sentence,) = lower_bounds(old)
    assert sentence.startswith("The word_sorting row was measured with a fixed 16-token answer")
    assert "lower bound until the scan is rerun" in sentence
    assert lower_bounds(old.assign(answer_tokens=[60, 16])) == []  # rerun through the evaluator: no note
    assert "lower bound" in page(old.assign(n=1, options=0, majority=1.0, chance=0.0), "m", 40, 64)


def test_render_only_writes_the_page_from_the_csv(tmp_path):
    out = tmp_path / "scan"
    pd.DataFrame(ROWS).to_csv(out.with_suffix(".csv"), index=False)
    assert load_script("bbh_scan").main(["--render-only", "--out", str(out), "--model", "m"]) == 0
    page = out.with_suffix(".md").read_text()
    assert "2 of 27 tasks scanned so far" in page
    lines = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| ")}
    assert "20 [10, 35]" in lines["navigate"] and "42 [29, 58]" in lines["navigate"]  # percent, Wilson bounds
    assert lines["navigate"].rstrip("| ").endswith("yes")  # navigate is in the paper's 21 tasks
    assert "| -" in lines["dyck_languages"]  # no loglik for a free-text task


def test_render_only_without_a_scan_says_so_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_script("bbh_scan").main(["--render-only", "--out", str(tmp_path / "scan")])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no scan results at" in error and "run the scan first" in error
    assert not (tmp_path / "scan.md").exists()

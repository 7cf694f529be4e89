"""Answer parsing and scoring, per answer type, on hand-written model outputs and on every gold target."""

import json

import pytest

from greater.config import TaskConfig
from greater.tasks import build_task
from greater.tasks.answers import normalize_number, parser_for
from greater.tasks.base import Example
from tests.helpers import SHARED_DATA

BBH_TASKS = sorted(p.stem for p in (SHARED_DATA / "bbh").glob("*.json")) if SHARED_DATA.exists() else []


@pytest.mark.parametrize(
    ("answer_type", "options", "text", "expected"),
    [
        ("choice", None, " (B), because the others are wrong.", "(B)"),
        ("choice", None, " B. The second one", "(B)"),
        ("choice", None, " option (Q)", "(Q)"),
        ("choice", None, " none of them", None),
        ("yes_no", None, " yes, he did.", "Yes"),
        ("yes_no", None, ' "No".', "No"),
        ("yes_no", None, " not sure", None),
        ("true_false", None, " FALSE", "False"),
        ("valid_invalid", None, " invalid, since", "invalid"),
        ("valid_invalid", None, " valid.", "valid"),
        ("label", ["True", "False", "Uncertain"], " uncertain, given", "Uncertain"),
        ("integer", None, " $1,234.", "1234"),
        ("integer", None, " -17 apples", "-17"),
        ("integer", None, " 42.0", "42"),
        ("integer", None, " 2.5 hours", "2.5"),
        ("integer", None, " many", None),
        ("text", None, ' "apple banana cherry".\nMore text', "apple banana cherry"),
        ("text", None, "   ", None),
    ],
)
def test_parse(answer_type, options, text, expected):
    assert parser_for(answer_type, options)(text) == expected


def test_numbers_normalize_alike():
    assert normalize_number("1,000") == normalize_number("1000.00") == "1000"


def test_unknown_answer_type_names_the_choices():
    with pytest.raises(ValueError, match="unknown task.answer_type 'nope'"):
        parser_for("nope", None)


def task_for(name, **overrides):
    from omegaconf import OmegaConf

    from tests.helpers import ROOT

    cfg = OmegaConf.merge(
        OmegaConf.structured(TaskConfig), OmegaConf.load(ROOT / "conf" / "task" / f"{name}.yaml"), overrides
    )
    return build_task(OmegaConf.to_object(cfg), str(SHARED_DATA), seed=0)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
@pytest.mark.parametrize("name", [f"bbh/{t}" for t in BBH_TASKS] + ["gsm8k", "folio"])
def test_every_gold_target_parses_to_itself_and_scores_correct(name):
    task = task_for(name)
    for example in task.train + task.test:
        # the gold answer as the model would write it after the extractor
        parsed = task.parse(task.target_text(example) + ".")
        assert parsed is not None, example.answer
        assert task.is_correct(parsed, example), (example.answer, parsed)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
@pytest.mark.parametrize("name", [f"bbh/{t}" for t in BBH_TASKS] + ["gsm8k", "folio"])
def test_wrong_answers_are_marked_wrong(name):
    task = task_for(name)
    example = task.test[0]
    wrong = {
        "choice": "(Z)" if example.answer != "(Z)" else "(A)",
        "integer": str(int(float(example.answer)) + 1) if example.answer.lstrip("-").isdigit() else "0",
        "text": example.answer + " extra",
    }.get(task.answer_type)
    if wrong is None:  # closed sets: any other option
        wrong = next(o for o in task.options if task.normalize(o) != task.normalize(example.answer))
    assert not task.is_correct(task.parse(" " + wrong), example)
    assert not task.is_correct(None, example)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_bbh_answer_formats_match_the_data_readme(caplog):
    for name in BBH_TASKS:
        rows = json.loads((SHARED_DATA / "bbh" / f"{name}.json").read_text())["examples"]
        task = task_for(f"bbh/{name}", n_test=0)  # every example
        kept = task.train + task.test
        if task.answer_type == "choice":
            assert all(o.startswith("(") and o.endswith(")") for o in task.options), name
        if task.options:
            assert {e.answer for e in kept} <= set(task.options), name
        # only malformed golds are dropped: the free-text targets among two tasks' letter choices
        dropped = len(rows) - len(kept)
        assert dropped == {"movie_recommendation": 1, "ruin_names": 2}.get(name, 0), name


def test_sports_understanding_lower_case_gold_matches_either_case():
    parse = parser_for("yes_no", None)
    from greater.tasks.answers import normalizer_for

    normalize = normalizer_for("yes_no")
    assert normalize(parse(" Yes")) == normalize("yes")
    ex = Example("q", "yes")
    assert ex.answer == "yes"

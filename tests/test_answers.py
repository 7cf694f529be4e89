"""Answer parsing and scoring, per answer type, on hand-written model outputs and on every gold target."""

import json
import re

import pytest

from greater.tasks import build_task
from greater.tasks.answers import normalize_number, normalizer_for, parser_for
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
    from greater.tasks import task_config

    return build_task(task_config(name, **overrides), str(SHARED_DATA), seed=0)


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


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_sports_understanding_lower_case_gold_is_read_as_Yes_No():
    task = task_for("bbh/sports_understanding")
    assert {e.answer for e in task.train + task.test} == {"Yes", "No"}
    example = next(e for e in task.test if e.answer == "Yes")
    assert task.target_text(example) == " Yes"  # the answer loss trains the spelling the extractor asks for
    assert task.is_correct(task.parse(" yes."), example)
    assert not task.is_correct(task.parse(" no, it is implausible."), example)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_choice_options_cover_every_letter_the_questions_offer():
    """Options list the most letters any question offers (for log-likelihood evaluation), not only the golds."""
    for name in BBH_TASKS:
        task = task_for(f"bbh/{name}", n_test=0)
        if task.answer_type != "choice":
            continue
        offered = {
            f"({letter})" for e in task.train + task.test for letter in re.findall(r"^\(([A-R])\)", e.question, re.M)
        }
        assert offered == set(task.options), name


@pytest.mark.parametrize(
    ("name", "output", "correct", "expected"),
    [
        ("bbh/date_understanding", " (C) 04/12/2001. The date one week ago was ...", "(C)", True),
        ("bbh/date_understanding", " The answer is (D), since ...", "(C)", False),
        ("bbh/date_understanding", " A date is hard to tell.", "(A)", None),  # prose, not option A
        ("bbh/causal_judgement", " No. The man did not intend it.", "No", True),
        ("bbh/causal_judgement", " Yes.", "No", False),
        ("bbh/formal_fallacies", " invalid. The premises do not entail it.", "valid", False),
        ("bbh/boolean_expressions", " False, because not True is False.", "False", True),
        ("bbh/multistep_arithmetic_two", " -1,234.0", "-1234", True),
        ("bbh/multistep_arithmetic_two", " 1234", "-1234", False),
        ("bbh/object_counting", " 7 objects in total.", "7", True),
        ("bbh/dyck_languages", " ] ) }", "] ) }", True),
        ("bbh/dyck_languages", " ])}", "] ) }", True),
        ("bbh/dyck_languages", " ) ] }", "] ) }", False),
        ("bbh/word_sorting", " apple banana cherry. These are sorted.", "apple banana cherry", True),
        ("bbh/word_sorting", ' "apple, banana, cherry"', "apple banana cherry", True),
        ("bbh/word_sorting", " banana apple cherry", "apple banana cherry", False),
        ("gsm8k", " $1,080.", "1080", True),
        ("gsm8k", " 18 dollars", "1080", False),
        ("gsm8k", " I cannot tell.", "1080", None),
        ("folio", " Uncertain, since the premises say nothing about Rina.", "Uncertain", True),
        ("folio", " True.", "False", False),
    ],
)
def test_realistic_model_outputs(name, output, correct, expected):
    """expected: True (correct), False (parsed but wrong) or None (nothing parses: scored wrong)."""
    from greater.tasks import task_config

    cfg = task_config(name)
    parse = parser_for(cfg.answer_type, cfg.options)
    normalize = normalizer_for(cfg.answer_type)
    parsed = parse(output)
    if expected is None:
        assert parsed is None
    else:
        assert (normalize(parsed) == normalize(correct)) is expected, parsed


def test_numbers_are_exact_and_read_unicode_minus():
    assert normalize_number("123456789012345678901") == "123456789012345678901"
    assert parser_for("integer", None)(" \u22127 degrees") == "-7"
    assert normalize_number("2.50") == "2.5"

"""The generated tasks of issue 12: every gold answer re-derived from the question text by an independent
solver, the configs build with golds their parsers read, and the labels are not lopsided."""

import re
from collections import Counter

import pytest

import greater
from greater.tasks.synthetic import ANIMALS, FRUITS, generate

NEW = ["word_problem", "count_objects", "tallest", "truth_tellers", "longer_word"]
NUMBER_WORDS = {"a": 1, "an": 1, "two": 2, "three": 3}


def solve_word_problem(q: str) -> int:
    numbers = [int(n) for n in re.findall(r"\d+", q)]
    return numbers[0] + numbers[1] - (numbers[2] if "gives" in q else 0)


def solve_count(q: str) -> int:
    listing, kind = re.match(r"I have (.*)\. How many (\w+) do I have\?", q).groups()
    group = ANIMALS if kind == "animals" else FRUITS
    total = 0
    for part in re.split(r", | and ", listing):
        count, noun = part.split(" ", 1)
        if singular(noun) in group:
            total += NUMBER_WORDS[count]
    return total


def singular(noun: str) -> str:
    irregular = {"mice": "mouse", "wolves": "wolf"}
    candidates = [irregular.get(noun), noun, noun[:-1], noun[:-2], noun[:-3] + "y"]
    return next(c for c in candidates if c in ANIMALS + FRUITS)


def solve_tallest(q: str) -> str:
    pairs = re.findall(r"(\w+) is taller than (\w+)\.", q)
    taller = {a for a, _ in pairs}
    shorter = {b for _, b in pairs}
    return (taller - shorter).pop() if "tallest" in q else (shorter - taller).pop()


def solve_truth(q: str) -> str:
    first = re.match(r"(\w+) (tells the truth|lies)\.", q)
    honest = {first.group(1): first.group(2) == "tells the truth"}
    for speaker, subject, claim in re.findall(r"(\w+) says (\w+) (tells the truth|lies)\.", q):
        honest[speaker] = honest[subject] == (claim == "tells the truth")
    last = re.search(r"Does (\w+) tell the truth\?", q).group(1)
    return "Yes" if honest[last] else "No"


SOLVERS = {
    "word_problem": lambda q: str(solve_word_problem(q)),
    "count_objects": lambda q: str(solve_count(q)),
    "tallest": solve_tallest,
    "truth_tellers": solve_truth,
    "longer_word": lambda q: max(re.search(r", (\w+) or (\w+)\?", q).groups(), key=len),
}


@pytest.mark.parametrize("kind", NEW)
def test_gold_answers_match_an_independent_solver(kind):
    examples = generate(kind, 400, seed=0)
    assert len({ex.question for ex in examples}) == 400
    for ex in examples:
        assert SOLVERS[kind](ex.question) == ex.answer, ex.question


def test_count_objects_writes_plain_english_plurals():
    text = " ".join(ex.question for ex in generate("count_objects", 400, seed=0))
    for wrong in ("mouses", "wolfs", "cherrys", "peachs", "foxs", "sheeps", "a apple"):
        assert wrong not in text


@pytest.mark.parametrize("kind", ["truth_tellers", "tallest", "longer_word"])
def test_labels_are_not_lopsided(kind):
    """A constant answer must not beat chance by much: Yes/No balanced, tallest/shortest asked equally."""
    examples = generate(kind, 400, seed=0)
    if kind == "truth_tellers":
        assert 0.4 < Counter(ex.answer for ex in examples)["Yes"] / 400 < 0.6
    elif kind == "tallest":
        assert 0.4 < sum("tallest" in ex.question for ex in examples) / 400 < 0.6
    else:  # the longer word comes first about half the time
        firsts = [re.search(r", (\w+) or", ex.question).group(1) == ex.answer for ex in examples]
        assert 0.4 < sum(firsts) / 400 < 0.6


@pytest.mark.parametrize("kind", NEW)
def test_configs_build_with_golds_their_parsers_read(kind):
    task = greater.load_task(f"synthetic/{kind}")
    assert len(task.test) == 100 and len(task.train) == 8
    assert not {ex.question for ex in task.train} & {ex.question for ex in task.test}
    for ex in task.train + task.test:
        assert task.is_correct(task.parse(f" {ex.answer}."), ex)

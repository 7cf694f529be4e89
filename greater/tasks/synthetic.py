"""Synthetic tasks the project generates itself, so the default job needs no download.

Each generator is seeded and returns `size` distinct examples. They are chosen so that a 135M-parameter
model is neither hopeless nor perfect, and the instruction visibly moves its accuracy.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from greater.config import TaskConfig
from greater.tasks.base import Example

ANIMALS = [
    "dog",
    "cat",
    "horse",
    "cow",
    "lion",
    "tiger",
    "rabbit",
    "mouse",
    "sheep",
    "goat",
    "bear",
    "wolf",
    "fox",
    "deer",
    "duck",
    "eagle",
    "frog",
    "snake",
    "whale",
    "shark",
    "monkey",
    "zebra",
    "camel",
    "pig",
]
FRUITS = [
    "apple",
    "banana",
    "cherry",
    "grape",
    "lemon",
    "mango",
    "orange",
    "peach",
    "pear",
    "plum",
    "melon",
    "kiwi",
    "lime",
    "apricot",
    "papaya",
    "fig",
    "coconut",
    "strawberry",
    "pineapple",
    "raspberry",
]


def compare_numbers(rng: random.Random) -> Example:
    a, b = rng.sample(range(10, 100), 2)
    return Example(f"Which number is larger, {a} or {b}?", str(max(a, b)))


def odd_one_out(rng: random.Random) -> Example:
    """Three animals and a fruit (or the reverse): name the one that does not belong."""
    group, other = (ANIMALS, FRUITS) if rng.random() < 0.5 else (FRUITS, ANIMALS)
    items = rng.sample(group, 3) + [rng.choice(other)]
    odd = items[-1]
    rng.shuffle(items)
    return Example(f"Which word does not belong with the others: {', '.join(items)}?", odd)


def animal_or_fruit(rng: random.Random) -> Example:
    word = rng.choice(ANIMALS + FRUITS)
    return Example(f"Is a {word} an animal or a fruit?", "animal" if word in ANIMALS else "fruit")


# The generated tasks of BBH and GSM8K kinds (issue 12): small enough that a 135M model has signal on them.
NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Henry", "Iris", "Jack", "Kate", "Leo"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "coins", "cards"]
COUNT_WORDS = ["one", "two", "three"]
IRREGULAR_PLURALS = {
    "mouse": "mice",
    "sheep": "sheep",
    "deer": "deer",
    "wolf": "wolves",
    "fox": "foxes",
    "peach": "peaches",
}


def word_problem(rng: random.Random) -> Example:
    """GSM8K in miniature: one or two additions or subtractions with numbers under 10."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    start, more = rng.randint(2, 9), rng.randint(1, 9)
    question = f"{name} has {start} {item} and gets {more} more."
    total = start + more
    if rng.random() < 0.5:
        away = rng.randint(1, total - 1)
        question += f" Then {name} gives {away} away."
        total -= away
    return Example(f"{question} How many {item} does {name} have now?", str(total))


def count_objects(rng: random.Random) -> Example:
    """BBH object_counting in miniature: count the animals (or fruits) in a list of two to five, most of
    them single, with one distractor from the other group half the time."""
    kind, group, other = ("animals", ANIMALS, FRUITS) if rng.random() < 0.5 else ("fruits", FRUITS, ANIMALS)
    counts = [rng.choice([1, 1, 1, 2]) for _ in range(rng.randint(2, 4))]
    parts = [_counted(n, w) for n, w in zip(counts, rng.sample(group, len(counts)))]
    if rng.random() < 0.5:
        parts.append(_counted(1, rng.choice(other)))
    rng.shuffle(parts)
    listing = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return Example(f"I have {listing}. How many {kind} do I have?", str(sum(counts)))


def _counted(n: int, word: str) -> str:
    if n == 1:
        return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"
    return f"{COUNT_WORDS[n - 1]} {_plural(word)}"


def _plural(word: str) -> str:
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"  # cherry -> cherries
    return word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")


def tallest(rng: random.Random) -> Example:
    """BBH logical_deduction in miniature: three people ordered by two comparisons; name one end."""
    order = rng.sample(NAMES, 3)  # tallest first
    facts = [f"{order[0]} is taller than {order[1]}.", f"{order[1]} is taller than {order[2]}."]
    rng.shuffle(facts)
    ask_tallest = rng.random() < 0.5
    question = f"{' '.join(facts)} Who is the {'tallest' if ask_tallest else 'shortest'}?"
    return Example(question, order[0] if ask_tallest else order[-1])


def truth_tellers(rng: random.Random) -> Example:
    """BBH web_of_lies in miniature: a chain of two or three speakers."""
    people = rng.sample(NAMES, rng.randint(2, 3))
    honest = rng.random() < 0.5
    sentences = [f"{people[0]} {'tells the truth' if honest else 'lies'}."]
    for speaker, subject in zip(people[1:], people):
        claims_honest = rng.random() < 0.5
        sentences.append(f"{speaker} says {subject} {'tells the truth' if claims_honest else 'lies'}.")
        honest = claims_honest == honest  # a true claim made by an honest speaker, or a false one by a liar
    question = f"{' '.join(sentences)} Does {people[-1]} tell the truth?"
    return Example(question, "Yes" if honest else "No")


def longer_word(rng: random.Random) -> Example:
    """String manipulation: which of two words has more letters (lengths differ by at least two)."""
    while True:
        a, b = rng.sample(ANIMALS + FRUITS, 2)
        if abs(len(a) - len(b)) >= 2:
            return Example(f"Which word has more letters, {a} or {b}?", max(a, b, key=len))


GENERATORS: dict[str, Callable[[random.Random], Example]] = {
    "compare_numbers": compare_numbers,
    "odd_one_out": odd_one_out,
    "animal_or_fruit": animal_or_fruit,
    "word_problem": word_problem,
    "count_objects": count_objects,
    "tallest": tallest,
    "truth_tellers": truth_tellers,
    "longer_word": longer_word,
}


def generate(kind: str, size: int, seed: int) -> list[Example]:
    if kind not in GENERATORS:
        raise ValueError(f"unknown synthetic task '{kind}'; choose one of {', '.join(GENERATORS)}")
    rng = random.Random(f"{kind}:{seed}")
    seen: dict[str, Example] = {}
    for _ in range(size * 50):  # small spaces (animal_or_fruit) run out of distinct questions: stop there
        example = generator_example(kind, rng)
        seen.setdefault(example.question, example)
        if len(seen) == size:
            break
    return [Example(ex.question, ex.answer, id=f"{kind}#{i}") for i, ex in enumerate(seen.values())]


def generator_example(kind: str, rng: random.Random) -> Example:
    return GENERATORS[kind](rng)


def load_synthetic(cfg: TaskConfig, seed: int) -> list[Example]:
    """The examples of `synthetic/<kind>`; the data is fixed (seed 0) so splits alone vary with the seed."""
    kind = cfg.name.split("/", 1)[-1]
    return generate(kind, cfg.synthetic_size, seed=0)

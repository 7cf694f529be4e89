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


GENERATORS: dict[str, Callable[[random.Random], Example]] = {
    "compare_numbers": compare_numbers,
    "odd_one_out": odd_one_out,
    "animal_or_fruit": animal_or_fruit,
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

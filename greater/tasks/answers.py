"""Reading a final answer out of model text, per answer type, and normalizing both sides the same way.

The parser looks for the first answer-shaped span in the text that follows the extractor, so
" (B), because ..." reads as "(B)" and " $1,234." as "1234". Text that holds no answer parses to None,
which the scorer counts as wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ANSWER_TYPES = ("choice", "yes_no", "true_false", "valid_invalid", "label", "integer", "text")
DEFAULT_OPTIONS = {
    "yes_no": ["Yes", "No"],
    "true_false": ["True", "False"],
    "valid_invalid": ["valid", "invalid"],
}
CHOICE = re.compile(r"\(([A-R])\)|^\s*([A-R])(?:[).:,\s]|$)")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def parse_choice(text: str) -> str | None:
    match = CHOICE.search(text.strip())
    return f"({match.group(1) or match.group(2)})" if match else None


def parse_integer(text: str) -> str | None:
    match = NUMBER.search(text.replace("$", ""))
    return normalize_number(match.group(0)) if match else None


def normalize_number(text: str) -> str:
    cleaned = text.replace(",", "").strip().rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return cleaned
    return str(int(value)) if value == int(value) else str(value)


def option_parser(options: list[str]) -> Callable[[str], str | None]:
    """The option named first in the text, as a whole word, case-insensitive ("invalid" is not "valid")."""
    by_length = sorted(options, key=len, reverse=True)  # longer first, so "invalid" wins over "valid"
    pattern = re.compile(r"\b(" + "|".join(re.escape(o) for o in by_length) + r")\b", re.IGNORECASE)
    canonical = {o.lower(): o for o in options}

    def parse(text: str) -> str | None:
        match = pattern.search(text)
        return canonical[match.group(1).lower()] if match else None

    return parse


def parse_text(text: str) -> str | None:
    """Free text (dyck, word sorting): the first line, without quotes and a closing period."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    for _ in range(2):  # '"a b".' and '"a b."' alike
        line = line.strip().rstrip(".").strip("\"'`")
    return line or None


def normalize_text(text: str) -> str:
    return " ".join(text.split()).lower()


def parser_for(answer_type: str, options: list[str] | None) -> Callable[[str], str | None]:
    if answer_type == "choice":
        return parse_choice
    if answer_type == "integer":
        return parse_integer
    if answer_type == "text":
        return parse_text
    if answer_type in DEFAULT_OPTIONS or answer_type == "label":
        chosen = options or DEFAULT_OPTIONS.get(answer_type)
        if not chosen:
            raise ValueError(f"answer_type '{answer_type}' needs task.options, e.g. [True, False, Uncertain]")
        return option_parser(list(chosen))
    raise ValueError(f"unknown task.answer_type '{answer_type}'; use one of {', '.join(ANSWER_TYPES)}")


def normalizer_for(answer_type: str) -> Callable[[str], str]:
    if answer_type == "integer":
        return normalize_number
    if answer_type == "choice":
        return lambda text: text.strip().upper()
    return normalize_text

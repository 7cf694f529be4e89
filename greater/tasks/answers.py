"""Reading a final answer out of model text, per answer type, and normalizing both sides the same way.

The parser looks for the first answer-shaped span in the text that follows the extractor, so
" (B), because ..." reads as "(B)" and " $1,234." as "1234". Text that holds no answer parses to None,
which the scorer counts as wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from greater.config import AnswerType

ANSWER_TYPES = tuple(t.value for t in AnswerType)
DEFAULT_OPTIONS = {
    "yes_no": ["Yes", "No"],
    "true_false": ["True", "False"],
    "valid_invalid": ["valid", "invalid"],
}
# "(B)" anywhere, or a bare leading letter followed by punctuation or the end ("B.", "B)", "B"):
# a bare letter followed by a word ("A man ...") is prose, not an answer.
CHOICE = re.compile(r"\(([A-R])\)|^\s*([A-R])(?=[).:,;]|\s*$)")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
BRACKETS = set("()[]{}<>")
SENTENCE_END = re.compile(r"\.(?:\s|$)")


def parse_choice(text: str) -> str | None:
    match = CHOICE.search(text.strip())
    return f"({match.group(1) or match.group(2)})" if match else None


def parse_integer(text: str) -> str | None:
    # "−" (U+2212) is how some models write a minus; "$" is dropped so "$1,234" reads as 1234.
    match = NUMBER.search(text.replace("\u2212", "-").replace("$", ""))
    return normalize_number(match.group(0)) if match else None


def normalize_number(text: str) -> str:
    """ "1,234" / "1234.0" / " 1234." -> "1234"; Decimal keeps large integers exact (float would not)."""
    cleaned = text.replace(",", "").strip().rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return cleaned
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


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
    """Free text (dyck, word sorting): the first line up to its first sentence end, without quotes."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = SENTENCE_END.split(line, maxsplit=1)[0]  # "a b c. Because ..." -> "a b c"
    for _ in range(2):  # '"a b".' and '"a b."' alike
        line = line.strip().rstrip(".").strip("\"'`")
    return line or None


def normalize_text(text: str) -> str:
    """Case- and spacing-blind; word lists ignore commas; bracket sequences ignore spaces ("] )" == "])")."""
    if text and set(text) <= BRACKETS | {" ", "\t", "\n"}:
        return "".join(text.split())
    return " ".join(text.replace(",", " ").split()).lower()


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


def canonical_gold(answer: str, options: list[str] | None, normalize: Callable[[str], str]) -> str:
    """The gold answer spelled as its option ("yes" -> "Yes" when the options are Yes / No), so the answer
    loss trains the same spelling the extractor asks for; answers outside the options stay as they are."""
    for option in options or []:
        if normalize(option) == normalize(answer):
            return option
    return answer

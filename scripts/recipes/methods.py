"""How each method is named in tables: data, in one place (the optimizer's config name -> its display name).

A text method whose prompts another model wrote is a row of its own, "APO (writer: gemma3-270m)"; the paper's
"APO (GPT-4)" (APO with GPT-4 writing the prompts for a smaller model) is the published counterpart of our APO
writer rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

METHOD_NAMES: dict[str, str] = {
    "zs_cot": "ZS-CoT",
    "ape": "APE",
    "apo": "APO",
    "pe2": "PE2",
    "textgrad": "TextGrad",
    "opro": "OPRO",
    "gepa": "GEPA",
    "greater": "GReaTer",
}
# The table order: the paper's rows, baselines first.
METHOD_ORDER: tuple[str, ...] = tuple(METHOD_NAMES.values())
WRITER_MARK = " (writer: "
# Our rows with another writer -> the paper's row with a stronger writer (its Table 2 only).
PAPER_WRITER_ROWS: dict[str, str] = {"APO": "APO (GPT-4)"}


def display_name(optimizer: str, writer: str | None = None) -> str:
    """A method's name in tables; a method not listed (a plugin) shows under its config name, and one whose
    prompts another model wrote names that writer."""
    name = METHOD_NAMES.get(optimizer, optimizer)
    return f"{name}{WRITER_MARK}{writer})" if isinstance(writer, str) and writer else name


def method_column(rows: Any) -> list[str]:
    """The display name of each row of a collected table (greater.compare.collect; its `writer` column may
    be absent in older tables)."""
    writers = rows["writer"] if "writer" in rows else [None] * len(rows)
    return [display_name(o, w) for o, w in zip(rows["optimizer"], writers)]


def split_name(method: str) -> tuple[str, str | None]:
    """A display name -> (the method's name, its writer or None): the inverse of `display_name`."""
    if method.endswith(")") and WRITER_MARK in method:
        name, writer = method[:-1].split(WRITER_MARK, 1)
        return name, writer
    return method, None


def paper_row(method: str) -> str | None:
    """The paper's row to print beside ours: the same name, or for a writer row the paper's row with a
    stronger writer (None where the paper has none)."""
    name, writer = split_name(method)
    return name if writer is None else PAPER_WRITER_ROWS.get(name)


def ordered(methods: Iterable[str]) -> list[str]:
    """Display names in table order: the paper's methods first, each followed by its writer rows; plugins last."""
    rank = {name: i for i, name in enumerate(METHOD_ORDER)}

    def key(method: str) -> tuple[int, str, str]:
        name, writer = split_name(method)
        return rank.get(name, len(rank)), name, writer or ""

    return sorted(set(methods), key=key)

"""Meta-prompt text that depends on where the optimized prompt sits (PE2's template, OPRO's "placed ...")."""

from __future__ import annotations

from typing import TypeVar

from greater.config import Placement

T = TypeVar("T")


def for_placement(table: dict[Placement, T], placement: str, method: str, missing: str) -> T:
    """The table's entry for the run's placement; an unknown placement is one line naming the known ones
    (`missing` says what the method lacks for it, e.g. "has no template")."""
    try:
        return table[Placement(placement)]
    except ValueError:
        known = ", ".join(table)
        raise ValueError(f"{method}: placement={placement!r} {missing}; use one of {known}") from None

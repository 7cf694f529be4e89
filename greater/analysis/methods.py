"""How each method is named in tables: data, in one place (the optimizer's config name -> its display name)."""

from __future__ import annotations

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


def display_name(optimizer: str) -> str:
    """A method's name in tables; a method not listed (a plugin) shows under its config name."""
    return METHOD_NAMES.get(optimizer, optimizer)

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


def display_name(optimizer: str, writer: str | None = None) -> str:
    """A method's name in tables; a method not listed (a plugin) shows under its config name. A text method
    whose prompts another model wrote is its own row, "APO (writer: gemma3-270m)" (the paper's "APO (GPT-4)")."""
    name = METHOD_NAMES.get(optimizer, optimizer)
    return f"{name} (writer: {writer})" if isinstance(writer, str) and writer else name

"""The answer formats of the authors' runs (psunlpgroup/GreaTer), for the paper's experiments.

`task.answer_format=reference` (set by experiment=paper_bbh|paper_gsm8k|paper_folio) rewrites a built task
the way the reference runs it:
- the question ends with a fixed ". Use" and the optimized prompt follows it (AM:2018-2019, 2070; AM is
  llm_opt/base/attack_manager.py), so "Use" itself is not optimized;
- the extractor asks for a marked answer; the reference appends the gold to it (AM:2066-2067), and the
  answer loss reads that gold: the bare letter for multiple choice ("(B)" -> "B", AM:2011-2014), the number,
  or the word in the file's own spelling (sports_understanding's "yes");
- two extractor sets, by model family (`task.reference_style`, copied from `model.reference_style`):
  llama: experiments/run_llama3_all.sh:17-39 (L3) and the Llama logs: '$A', $NUMBER$ ... is $, words end
  "is $ " so the target is " Yes";
  gemma: experiments/run_gemma2_mcq.sh:17-38 (G2) and every gemma2-logs header: '$ A', **NUMBER** ... is **,
  words end "is $" and the gemma-2 path adds no space (AM:407), so the target is "Yes" glued to "$";
- FOLIO is three-way multiple choice, (A) True (B) False (C) Uncertain (data/FOLIO/*.csv).
There is no committed GSM8K or FOLIO script: the GSM8K extractor is a line the reference overwrites (AM:2021),
FOLIO's and, for Gemma, boolean_expressions' (absent from G2 and the logs) are by analogy.

The 21 BBH tasks of the paper's Table 1 (the keys of run_llama3_all.sh:17-39) are listed with the paper's other
task lists in scripts/recipes/paper.py, this repository's experiments: the library needs none of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from greater.tasks.answers import parse_choice
from greater.tasks.base import Example, Task

# Letters the script's extractor offers per multiple-choice task (run_llama3_all.sh:17-39).
LETTERS = {
    "tracking_shuffled_objects_five_objects": "ABCDE",
    "date_understanding": "ABCDE",
    "penguins_in_a_table": "ABCDE",
    "logical_deduction_five_objects": "ABCDE",
    "disambiguation_qa": "ABC",
    "geometric_shapes": "ABCDEFGHIJ",
    "salient_translation_error_detection": "ABCDEF",
    "movie_recommendation": "ABCD",
    "ruin_names": "ABCD",
    "temporal_sequences": "ABCD",
    "reasoning_about_colored_objects": "ABCDEFGHIJKLMNOPQR",
    "hyperbaton": "AB",
    "snarks": "AB",
    "folio": "ABC",  # no committed FOLIO script: the same letter format over its three options
}
WORDS = {
    "formal_fallacies": ("valid", "invalid"),
    "causal_judgement": ("Yes", "No"),
    "navigate": ("Yes", "No"),
    "web_of_lies": ("Yes", "No"),
    "sports_understanding": ("yes", "no"),
    "boolean_expressions": ("True", "False"),
}
NUMBERS = {
    "multistep_arithmetic_two": "a positive or negative integer",
    "object_counting": "a positive integer",
}
FOLIO_LABELS = ("True", "False", "Uncertain")
PREFIX = "Therefore, the final answer"
USE = ". Use"  # fixed after the question; the optimized prompt starts after it


STYLES = ("llama", "gemma")


def reference_extractor(key: str, style: str = "llama") -> str:
    """The reference's extractor for a task key (a BBH file name, "gsm8k" or "folio") and model family."""
    if style not in STYLES:
        raise ValueError(f"unknown task.reference_style '{style}'; use llama or gemma")
    gemma = style == "gemma"
    if key in LETTERS:
        mark = "$ " if gemma else "$"  # G2: '$ A'; L3: '$A'
        offered = " or ".join(f"'{mark}{letter}'" for letter in LETTERS[key])
        return f"{PREFIX} (use exact format: {offered}) is $"
    if key in WORDS:
        offered = " or ".join(f"'$ {word}'" for word in WORDS[key])
        return f"{PREFIX} (use exact format: {offered}) is $"  # L3's trailing space: see target_text
    if key in NUMBERS:
        if gemma:
            return f"{PREFIX} (use exactly this format: **NUMBER**, where NUMBER is {NUMBERS[key]}) is **"
        return f"{PREFIX} (use exactly this format: $NUMBER$, where NUMBER is {NUMBERS[key]}) is $"
    if key == "gsm8k":  # the overwritten GSM8K extractor at AM:2021, without its trailing space
        return "Therefore, the final numerical answer is ($ result, where result is numerical) $"
    raise ValueError(
        f"task.answer_format=reference has no format for '{key}'; it covers the paper's BBH tasks, gsm8k and "
        "folio (use task.answer_format=default)"
    )


@dataclass
class ReferenceTask(Task):
    """A task in the reference's format: the answer right after the extractor's "$"."""

    bare_letters: bool = False  # multiple choice: the target is "B" for gold "(B)"
    space_before_answer: bool = False  # Llama's word answers: " Yes" (L3's extractor ends with "$ ")

    def target_text(self, example: Example) -> str:
        if self.bare_letters:
            return parse_choice(example.answer).strip("()")  # "(B)" -> "B"
        return (" " if self.space_before_answer else "") + example.answer


def after_dollar(parse):
    """A parser for text that follows "$" (or Gemma's "**"): drop leading "$", "*" and spaces and cut at the
    closing "$" or "**", so "B$ because ..." reads as "B", "42$" and "42** apples" as "42"; then the task's
    own parser."""

    def parse_after(text: str) -> str | None:
        core = re.split(r"\$|\*\*", text.lstrip(" $*\n"), maxsplit=1)[0]
        return parse(core) or parse(text)

    return parse_after


def reference_format(task: Task, key: str, style: str = "llama") -> ReferenceTask:
    """`task` rewritten in the reference's format; `key` names the task (BBH file name, gsm8k, folio), `style`
    the model family whose run it follows. Gold answers are kept as the data spells them (build_task does not
    canonicalize them under this format): the reference trains on the file's "yes", not the option's "Yes"."""
    base = {f.name: getattr(task, f.name) for f in fields(Task)}
    if key == "folio":
        base.update(_folio_as_choice(task))
    if key in WORDS:  # the closed set as the extractor spells it (loglik evaluation scores these)
        base["options"] = list(WORDS[key])
    base["question_template"] += USE
    if base["initial_prompt"].startswith("Use "):
        base["initial_prompt"] = base["initial_prompt"][len("Use ") :]
    base["extractor"] = reference_extractor(key, style)
    base["parse"] = after_dollar(base["parse"])
    spaced = (key in WORDS and style == "llama") or key == "gsm8k"
    return ReferenceTask(**base, bare_letters=key in LETTERS, space_before_answer=spaced)


def _folio_as_choice(task: Task) -> dict:
    """FOLIO as the reference poses it: options listed after the question, gold answers as letters."""
    letter = {label: f"({'ABC'[i]})" for i, label in enumerate(FOLIO_LABELS)}
    options = "\n".join(f"{letter[label]} {label}" for label in FOLIO_LABELS)

    def relabel(examples: list[Example]) -> list[Example]:
        return [replace(ex, answer=letter[ex.answer]) for ex in examples]

    return {
        "train": relabel(task.train),
        "dev": relabel(task.dev),
        "test": relabel(task.test),
        "question_template": task.question_template + "\nOptions:\n" + options,
        "answer_type": "choice",
        "options": [letter[label] for label in FOLIO_LABELS],
        "parse": parse_choice,
        "normalize": lambda text: text.strip().upper(),
    }


def task_key(loader: str, name: str, extra: dict | None) -> str:
    """The key a task config maps to: the BBH file name, or the loader for gsm8k and folio."""
    if loader == "bbh":
        return str((extra or {}).get("bbh_task") or name.split("/", 1)[-1])
    return loader

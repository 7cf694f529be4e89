"""The task screening of the powered experiment (issue 20): one row per (model, task) and the keep rule.

A row is the task's initial prompt evaluated as `greater-evaluate` does (generate mode, through
`evaluate_modes`, which a contract test holds equal to `evaluate_prompt`), with the chance level of the task's
answer space and the share of answers the parser could not read.
"""

from __future__ import annotations

import pandas as pd

from greater.config import EvaluationConfig
from greater.models.language_model import LanguageModel
from greater.tasks.base import Task
from recipes.scan import evaluate_modes

# The generated tasks with room for 400 distinct questions (animal_or_fruit has 44) and the chance level of a
# guess among the answers a question offers: two numbers or words, three names, four words, a count of 2-8, ...
CHANCE = {
    "synthetic/compare_numbers": 1 / 2,
    "synthetic/longer_word": 1 / 2,
    "synthetic/truth_tellers": 1 / 2,
    "synthetic/tallest": 1 / 3,
    "synthetic/odd_one_out": 1 / 4,
    "synthetic/count_objects": 1 / 7,
    "synthetic/word_problem": 1 / 17,
}
SCREENED_TASKS = tuple(CHANCE)
MARGIN, CEILING, FORMAT_FAILURES = 0.05, 0.90, 0.20


def screen_row(lm: LanguageModel, task: Task, max_reasoning_tokens: int) -> dict:
    """Accuracy with its Wilson interval, unparsed share and chance of the initial prompt on the test split."""
    result = evaluate_modes(
        lm, task, task.test, task.initial_prompt, EvaluationConfig(), max_reasoning_tokens, modes=("generate",)
    )["generate"]
    return {
        "n": result.n,
        "acc": result.accuracy,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "unparsed": result.n_unparsed / result.n,
        "chance": CHANCE.get(task.name, 0.0),
    }


def keep_reason(row: pd.Series) -> str:
    """Why a (model, task) is kept, or '' when it is not."""
    if row.ci_low > row.chance + MARGIN and row.ci_high < CEILING:
        return "between chance and ceiling"
    if row.unparsed >= FORMAT_FAILURES:
        return "format failures a prompt can fix"
    if row.ci_high < row.chance:
        return "below chance: answers off the question's options, which a prompt can fix"
    return ""


def page(table: pd.DataFrame, n: int, max_reasoning_tokens: int) -> str:
    shown = table.copy()
    shown["keep"] = [keep_reason(row) or "no" for _, row in shown.iterrows()]
    for col in ("acc", "ci_low", "ci_high", "unparsed", "chance"):
        shown[col] = (100 * shown[col]).round(0).astype(int)
    shown["accuracy %"] = [f"{a} [{lo}, {hi}]" for a, lo, hi in zip(shown.acc, shown.ci_low, shown.ci_high)]
    columns = ["model", "task", "n", "chance", "accuracy %", "unparsed", "keep", "seconds"]
    head = [
        "# Task screening for the powered experiment (issue 20)",
        "",
        "Each (model, task): the task's initial prompt on the first n test examples of seed 0, greedy reasoning "
        f"up to {max_reasoning_tokens} tokens, the answer generated after the extractor and parsed. Accuracy in % "
        "with a 95% Wilson interval; `unparsed` is the % of answers the parser could not read (counted wrong). "
        f"Kept: the interval lies above chance + {MARGIN:.0%} and below {CEILING:.0%}, or at least "
        f"{FORMAT_FAILURES:.0%} of the answers fail the parser, or the interval lies below chance (the model "
        "answers off the question's options, which a prompt can fix). The screen uses seed 0's test examples, "
        "which the experiment's seeds also draw from; it chooses tasks, never prompts.",
        "",
        "```bash",
        f"python scripts/screen_tasks.py --n {n} --max-reasoning-tokens {max_reasoning_tokens}",
        "```",
        "",
    ]
    return "\n".join(head) + shown[columns].to_markdown(index=False) + "\n"

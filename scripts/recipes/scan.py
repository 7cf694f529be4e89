"""A zero-shot scan of many tasks on one model, each answer read in both evaluation modes (issue 12).

`evaluate_modes` is `greater.evaluation.evaluator.evaluate_prompt` for several modes at the cost of one
reasoning (the only thing a scan adds, and it halves the cost on a CPU): the same slots, reasoning,
extractor, answer-token limit and option ranking, from the evaluator's own functions. A contract test
checks it equals `evaluate_prompt` mode by mode. `scan_task` is one row of the scan; `page` renders the
markdown page from the rows.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

import pandas as pd

from greater.config import EvaluationConfig
from greater.engine.frame import extractor_ids, generate_reasoning, prompt_slots
from greater.evaluation.evaluator import EvaluationResult, answer_token_limit, most_likely_options, predictions_of
from greater.models.language_model import LanguageModel
from greater.tasks.base import Example, Task
from recipes.paper import BBH_TASKS, PAPER_BBH_TASKS

MODES = ("generate", "loglik")
# Rows measured before the scan read answers through the evaluator (no answer_tokens in the CSV) had a fixed
# 16-token answer; where that cut the golds short (counted for issue 17 on SmolLM2), the row is a lower bound.
CUT_SHORT_BY_16 = {"word_sorting": "171 of its 250 golds are longer than 16 SmolLM2 tokens"}


def evaluate_modes(
    lm: LanguageModel,
    task: Task,
    examples: list[Example],
    prompt: str,
    cfg: EvaluationConfig,
    max_reasoning_tokens: int,
    placement: str = "after",
    modes: tuple[str, ...] = MODES,
) -> dict[str, EvaluationResult]:
    """`evaluate_prompt(..., cfg with mode=m, ...)` for every m in `modes`, from one reasoning per example.
    Each result's seconds count the shared reasoning once, plus its own answers."""
    started = time.perf_counter()
    prompt_ids = lm.encode(prompt)
    slots = prompt_slots(lm, task, examples, placement)
    reasonings = generate_reasoning(lm, slots, prompt_ids, max_reasoning_tokens)
    heads = [slot.with_prompt(prompt_ids) + r + extractor_ids(lm, task) for slot, r in zip(slots, reasonings)]
    shared = time.perf_counter() - started
    results = {}
    for mode in modes:
        began = time.perf_counter()
        raws, parsed = read_answers(lm, task, heads, replace(cfg, mode=mode))
        predictions = predictions_of(lm, task, examples, reasonings, raws, parsed)
        results[mode] = EvaluationResult(lm.name, prompt, predictions, shared + time.perf_counter() - began)
    return results


def read_answers(lm: LanguageModel, task: Task, heads: list[list[int]], cfg: EvaluationConfig):
    """(raw answers, parsed answers) after each head (reasoning + extractor), as evaluate_prompt reads them."""
    if cfg.mode == "generate":
        raws = [lm.decode(ids) for ids in lm.generate(heads, answer_token_limit(lm, task, cfg.max_answer_tokens))]
        return raws, [task.parse(raw) for raw in raws]
    if cfg.mode == "loglik":
        answers = most_likely_options(lm, task, heads)
        return answers, answers
    raise ValueError(f"unknown evaluation.mode '{cfg.mode}'; use generate or loglik")


def scan_task(
    lm: LanguageModel,
    task: Task,
    max_reasoning_tokens: int,
    cfg: EvaluationConfig | None = None,
    placement: str = "after",
) -> dict:
    """One row: the task's initial prompt on its test split, accuracy with a Wilson interval per mode
    (loglik only for closed answer sets), chance, the split's majority answer and the answer-token limit."""
    cfg = cfg or EvaluationConfig()
    examples = task.test
    modes = MODES if task.options else ("generate",)  # free-text tasks (dyck, word sorting) have no options
    results = evaluate_modes(lm, task, examples, task.initial_prompt, cfg, max_reasoning_tokens, placement, modes)
    row = {"n": len(examples), "options": len(task.options or []), "majority": majority(examples)}
    row["chance"] = 1 / row["options"] if row["options"] else 0.0
    for mode, result in results.items():
        row.update({f"{mode}_acc": result.accuracy, f"{mode}_ci_low": result.ci_low, f"{mode}_ci_high": result.ci_high})
    row["answer_tokens"] = answer_token_limit(lm, task, cfg.max_answer_tokens)
    return row


def majority(examples: list[Example]) -> float:
    """Accuracy of always answering the most frequent gold answer of this test split."""
    return Counter(ex.answer for ex in examples).most_common(1)[0][1] / len(examples)


def render(table: pd.DataFrame) -> str:
    shown = table.copy()
    for mode in MODES:
        for part in ("acc", "ci_low", "ci_high"):  # a scan of free-text tasks only has no loglik columns
            if f"{mode}_{part}" not in shown:
                shown[f"{mode}_{part}"] = float("nan")
        shown[mode] = [
            f"{100 * a:.0f} [{100 * lo:.0f}, {100 * hi:.0f}]" if pd.notna(a) else "-"
            for a, lo, hi in zip(shown[f"{mode}_acc"], shown[f"{mode}_ci_low"], shown[f"{mode}_ci_high"])
        ]
    shown["chance"] = (100 * shown.chance).round(0)
    shown["majority"] = (100 * shown.majority).round(0)
    shown["in paper's 21"] = shown.task.isin(PAPER_BBH_TASKS).map({True: "yes", False: "no"})
    columns = ["task", "n", "options", "chance", "majority", "generate", "loglik", "in paper's 21"]
    return shown[columns].to_markdown(index=False)


def lower_bounds(table: pd.DataFrame) -> list[str]:
    """One sentence per row measured with the old fixed 16-token answer where that cut its golds short."""
    limits = table.answer_tokens if "answer_tokens" in table else pd.Series([float("nan")] * len(table))
    return [
        f"The {task} row was measured with a fixed 16-token answer ({CUT_SHORT_BY_16[task]}), so it is a lower "
        "bound until the scan is rerun."
        for task, limit in zip(table.task, limits)
        if task in CUT_SHORT_BY_16 and pd.isna(limit)
    ]


def page(table: pd.DataFrame, model: str, n_test: int, max_reasoning_tokens: int) -> str:
    """The markdown page: what was run, how far it got, then the table."""
    done = len(table)
    head = [
        f"# Zero-shot BBH scan: {model}",
        "",
        f"{done} of {len(BBH_TASKS)} tasks scanned so far"
        + ("" if done >= len(BBH_TASKS) else " (the scan stopped for time; rerun the command to continue)")
        + f". Each task: its first {n_test} test examples, the task's initial prompt, greedy reasoning up to "
        f"{max_reasoning_tokens} tokens, then the answer read two ways: generated after the extractor and "
        "parsed (`generate`), or the answer option with the highest log-likelihood (`loglik`; free-text tasks "
        "have none). Accuracy in % with a 95% Wilson interval; chance is one over the number of options and "
        "majority is always answering this split's most frequent gold answer.",
        *(["", " ".join(lower_bounds(table))] if lower_bounds(table) else []),
        "",
        "```bash",
        f"python scripts/bbh_scan.py --data-dir ../shared/data --n-test {n_test} --threads 1",
        "```",
        "",
    ]
    return "\n".join(head) + "\n" + render(table) + "\n"

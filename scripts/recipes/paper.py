"""The paper's task lists and published numbers (Das et al., ICLR 2025), in one place.

The sweeps in conf/sweep/ are written from these lists (scripts/sweeps.py, checked by a test), and the
tables read them to decide which tasks count toward the paper's BBH average.
"""

from __future__ import annotations

# All 27 BIG-Bench Hard tasks (conf/task/bbh/*.yaml; a test checks the two agree).
BBH_TASKS: tuple[str, ...] = (
    "boolean_expressions",
    "causal_judgement",
    "date_understanding",
    "disambiguation_qa",
    "dyck_languages",
    "formal_fallacies",
    "geometric_shapes",
    "hyperbaton",
    "logical_deduction_five_objects",
    "logical_deduction_seven_objects",
    "logical_deduction_three_objects",
    "movie_recommendation",
    "multistep_arithmetic_two",
    "navigate",
    "object_counting",
    "penguins_in_a_table",
    "reasoning_about_colored_objects",
    "ruin_names",
    "salient_translation_error_detection",
    "snarks",
    "sports_understanding",
    "temporal_sequences",
    "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects",
    "web_of_lies",
    "word_sorting",
)
# The six BBH tasks the paper's Table 1 leaves out (not among the keys of the reference's
# experiments/run_llama3_all.sh:17-39); its BBH average covers the other 21.
NOT_IN_PAPER: frozenset[str] = frozenset(
    {
        "dyck_languages",
        "logical_deduction_seven_objects",
        "logical_deduction_three_objects",
        "tracking_shuffled_objects_seven_objects",
        "tracking_shuffled_objects_three_objects",
        "word_sorting",
    }
)
PAPER_BBH_TASKS: tuple[str, ...] = tuple(t for t in BBH_TASKS if t not in NOT_IN_PAPER)
# Every task of Table 1, as config names: the 27 BBH tasks, GSM8K and FOLIO.
PAPER_TASKS: tuple[str, ...] = (*(f"bbh/{t}" for t in BBH_TASKS), "gsm8k", "folio")

# Table 1 of the paper, as listed in shared/paper/reported.md: method -> {(model, benchmark): accuracy}.
_TABLE1_COLUMNS = [(m, b) for m in ("gemma2-9b", "llama3-8b") for b in ("GSM8K", "BBH", "FOLIO")]
_TABLE1_ROWS = {
    "ZS-CoT": [88.6, 71.7, 65.0, 79.6, 62.2, 58.6],
    "APE": [88.6, 71.7, 67.5, 79.9, 63.1, 57.6],
    "APO": [88.6, 72.3, 63.1, 81.1, 62.7, 58.6],
    "PE2": [88.6, 68.9, 62.1, 80.1, 61.5, 62.6],
    "TextGrad": [87.8, 72.9, 67.5, 78.5, 58.5, 56.2],
    "GReaTer": [89.4, 76.6, 69.1, 82.6, 68.7, 62.6],
}
PAPER: dict[str, dict[tuple[str, str], float]] = {
    method: dict(zip(_TABLE1_COLUMNS, values)) for method, values in _TABLE1_ROWS.items()
}
# Table 2: the average over its five BBH transfer tasks, (optimized with, evaluated on) -> method -> accuracy.
# "APO (GPT-4)": APO with GPT-4 writing the prompts (recipes.methods.paper_row: our APO writer rows).
PAPER_TRANSFER: dict[tuple[str, str], dict[str, float]] = {
    ("llama3-8b", "gemma2-9b"): {"TextGrad": 66.8, "APO": 69.4, "PE2": 69.6, "GReaTer": 76.2, "APO (GPT-4)": 69.8},
    ("gemma2-9b", "llama3-8b"): {"TextGrad": 42.8, "APO": 59.0, "PE2": 55.4, "GReaTer": 64.6, "APO (GPT-4)": 59.8},
}


def benchmark(task: str) -> str:
    """The column a task counts toward: "BBH" is the paper's 21-task average; the other six BBH tasks
    are reported apart, never averaged into it."""
    if task.startswith("bbh/"):
        return "BBH" if task.split("/", 1)[1] in PAPER_BBH_TASKS else "BBH (not in the paper's 21)"
    return {"gsm8k": "GSM8K", "folio": "FOLIO"}.get(task, task)

"""experiment=paper_* as the reference's runs ran: each model family's extractors (the literal strings of
psunlpgroup/GreaTer experiments/run_llama3_all.sh and run_gemma2_mcq.sh), the gold as the data spells it,
the logged top-k and no system turn. Composed through greater.compose, which imports no torch."""

import subprocess
import sys

import pytest

import greater
from greater.tasks import build_task
from tests.helpers import ROOT, SHARED_DATA

needs_data = pytest.mark.skipif(not (SHARED_DATA / "bbh").is_dir(), reason="no ../shared/data")

# run_gemma2_mcq.sh:17-38 (and every gemma2-logs header), verbatim.
G2 = {
    "date_understanding": "Therefore, the final answer (use exact format: '$ A' or '$ B' or '$ C' or '$ D' or "
    "'$ E') is $",
    "object_counting": "Therefore, the final answer (use exactly this format: **NUMBER**, where NUMBER is a positive "
    "integer) is **",
    "navigate": "Therefore, the final answer (use exact format: '$ Yes' or '$ No') is $",
    "sports_understanding": "Therefore, the final answer (use exact format: '$ yes' or '$ no') is $",
}
# run_llama3_all.sh:17-39, verbatim but for the shell escapes; the word extractors' trailing space is the
# space of our " Yes" target (we tokenize the extractor and the answer apart).
L3 = {
    "date_understanding": "Therefore, the final answer (use exact format: '$A' or '$B' or '$C' or '$D' or '$E') is $",
    "object_counting": "Therefore, the final answer (use exactly this format: $NUMBER$, where NUMBER is a positive "
    "integer) is $",
    "navigate": "Therefore, the final answer (use exact format: '$ Yes' or '$ No') is $ ",
    "sports_understanding": "Therefore, the final answer (use exact format: '$ yes' or '$ no') is $ ",
}


def paper_task(model: str, task: str, experiment: str = "paper_bbh"):
    """The run config and the task the runner would build from it."""
    cfg = greater.compose([f"experiment={experiment}", f"model={model}", f"task=bbh/{task}", f"data_dir={SHARED_DATA}"])
    return cfg, build_task(cfg.task, cfg.data_dir, cfg.seed)  # as the runner does


@needs_data
@pytest.mark.parametrize("model", ["gemma2-9b", "gemma2-2b"])
@pytest.mark.parametrize("name", sorted(G2))
def test_gemma_models_compose_the_gemma2_extractors_with_answers_glued_to_the_marker(model, name):
    cfg, task = paper_task(model, name)
    assert cfg.task.reference_style == "gemma"
    assert task.extractor == G2[name]
    # the reference appends the gold to the extractor with no space on the gemma-2 path (AM:407, 2066-2067)
    reference_target = G2[name] + task.train[0].answer.strip("()")
    assert task.extractor + task.target_text(task.train[0]) == reference_target


@needs_data
@pytest.mark.parametrize("model", ["llama3-8b", "llama3.2-1b"])
@pytest.mark.parametrize("name", sorted(L3))
def test_llama_models_compose_the_llama3_extractors(model, name):
    cfg, task = paper_task(model, name)
    assert cfg.task.reference_style == "llama"
    reference_target = L3[name] + task.train[0].answer.strip("()")
    assert task.extractor + task.target_text(task.train[0]) == reference_target


@needs_data
@pytest.mark.parametrize("model", ["gemma2-9b", "llama3-8b"])
def test_sports_understanding_trains_on_the_files_lower_case_gold(model):
    """The reference's gold is "yes"/"no" (data/BBH/sports_understanding.json), as the extractor asks; the
    default format keeps the option spelling."""
    _, task = paper_task(model, "sports_understanding")
    golds = {ex.answer for ex in task.train + task.dev + task.test}
    assert golds == {"yes", "no"}
    assert task.options == ["yes", "no"]
    targets = {task.target_text(ex) for ex in task.train}
    assert targets == ({"yes", "no"} if model == "gemma2-9b" else {" yes", " no"})
    # the test split still scores case-blind: a model writing "$ Yes" is right
    assert task.is_correct(task.parse(" Yes$ because"), next(ex for ex in task.test if ex.answer == "yes"))
    default = greater.load_task("bbh/sports_understanding", data_dir=str(SHARED_DATA), split="paper", n_train=50)
    assert {ex.answer for ex in default.train} == {"Yes", "No"}


@needs_data
def test_gemma_number_answers_parse_out_of_the_bold_marker():
    _, task = paper_task("gemma2-9b", "object_counting")
    assert task.parse(" 24** apples") == "24"
    assert task.target_text(task.train[0]) == task.train[0].answer  # "**" + "8", no space


@pytest.mark.parametrize(
    ("overrides", "topk"),
    [
        (["experiment=paper_bbh", "model=gemma2-9b"], 5),  # gemma2-logs: "Topk increased to 7"
        (["experiment=paper_bbh", "model=llama3-8b"], 5),  # llama3-logs(-2): "Topk increased to 7"
        (["experiment=paper_bbh", "model=gemma2-2b"], 15),  # gemma2-2b-logs: "Topk increased to 17"
        (["experiment=paper_bbh", "model=llama3.2-1b"], 15),  # llama32_1b-logs-2: "Topk increased to 17"
        (["experiment=paper_gsm8k", "model=llama3-8b"], 5),
        (["experiment=paper_folio", "model=gemma2-2b"], 15),
        (["experiment=paper_bbh_scripts", "model=gemma2-9b"], 40),  # run_gemma2_mcq.sh:67 --config.topk=40
        (["experiment=paper_bbh_scripts", "model=llama3.2-1b"], 40),  # run_llama3_all.sh:76
    ],
)
def test_paper_experiments_compose_the_logged_topk_and_no_system_turn(overrides, topk):
    cfg = greater.compose(overrides)
    assert cfg.optimizer.topk == topk
    assert cfg.model.system_turn is False
    assert cfg.task.answer_format == "reference"


def test_outside_the_paper_experiments_the_model_keeps_its_system_turn_and_the_default_format():
    cfg = greater.compose(["model=gemma2-9b", "optimizer=greater"])
    assert cfg.model.system_turn is True
    assert cfg.task.answer_format == "default"


def test_composing_a_paper_experiment_imports_no_torch():
    code = (
        "import sys, greater; cfg = greater.compose(['experiment=paper_bbh', 'model=gemma2-9b']); "
        "assert cfg.optimizer.topk == 5 and cfg.task.reference_style == 'gemma'; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

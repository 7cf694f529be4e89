"""GReaTer as the reference code runs it: the token filter, the final prompt, the paper's answer formats."""

import zlib
from pathlib import Path

import pytest
import torch

from greater.evaluation.dev import pick_on_dev
from greater.evaluation.evaluator import answer_token_limit, evaluate_prompt
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.greater.candidates import allowed_token_mask, ban_previous_token, reference_text_ok
from greater.optimizers.greater.optimizer import GreaterConfig, GreaterOptimizer
from greater.optimizers.greater.state import SearchState
from greater.tasks.base import Example, Task
from greater.tasks.reference_formats import after_dollar, reference_format
from recipes.paper import PAPER_BBH_TASKS

SMOLLM2 = Path("~/.cache/greater/models/smollm2-135m-float32").expanduser()


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    """Only the tokenizer of the embedded model, from its cached conversion (made by any run on it)."""
    if not (SMOLLM2 / "tokenizer.json").exists():
        pytest.skip("no converted SmolLM2 in ~/.cache/greater (run any job on model=smollm2-135m once)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(SMOLLM2)


def test_reference_filter_on_smollm2_bans_added_tokens_digits_quotes_and_the_previous_token(smollm2_tokenizer):
    tok = smollm2_tokenizer
    allowed = allowed_token_mask(tok, "reference")

    def ids(text):
        return tok(text, add_special_tokens=False).input_ids

    repo_name = tok.convert_tokens_to_ids("<repo_name>")
    assert repo_name not in tok.all_special_ids  # the old filter trusted this list and let it through
    assert not allowed[repo_name]
    digits = [i for i in ids("2024 7 42") if tok.decode([i]).strip()]  # digits split; spaces are tokens
    assert len(digits) == 7 and not any(allowed[i] for i in digits)
    apostrophe_s = ids("John's")[-1]
    assert tok.decode([apostrophe_s]) == "'s" and not allowed[apostrophe_s]
    for word in (" the", " step", "Think", ".", ","):
        (token,) = ids(word)
        assert allowed[token], word
    (space_dot,) = ids(" .")  # a period with a space before it is not a bare "."
    assert not allowed[space_dot]
    prompt = ids(" think about it now")
    banned = ban_previous_token(allowed, prompt, 2)
    assert not banned[prompt[1]] and banned[prompt[3]] and allowed[prompt[1]]
    assert not ban_previous_token(allowed, prompt, 0)[prompt[-1]]  # at 0: the prompt's last token (GO:279)
    # the ascii variant keeps digits and quotes but still bans added tokens
    wide = allowed_token_mask(tok, "ascii")
    assert wide[ids("7")[0]] and wide[apostrophe_s] and not wide[repo_name]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (" the", True),
        ("Step", True),
        (".", True),
        (",", True),
        (" ", True),
        ("7", False),
        (" .", False),
        ("'s", False),
        ("-", False),
        (".\n", False),
        ("é", False),
        ("_", False),
    ],
)
def test_reference_text_test(text, ok):
    assert reference_text_ok(text) is ok


def test_no_final_prompt_contains_the_placeholder(tiny_lm, parity_task):
    """A one-token prompt grows by placeholders from the second step; whatever stays in the pool, the final
    prompt has none (with and without a dev split, for both selections)."""
    parity_task.initial_prompt = "Go"
    parity_task.dev = parity_task.test[:2]
    for selection in ("reference", "keep_current"):
        opt = GreaterOptimizer(
            GreaterConfig(n_steps=3, topk=4, n_groups=2, group_size=2, min_candidates=2, selection=selection)
        )
        context = context_for(tiny_lm, parity_task, max_reasoning_tokens=3)
        result = optimize(opt, tiny_lm, parity_task, context)
        assert len(result.history[-1].details["prompt_ids"]) > len(tiny_lm.encode("Go"))  # it grew by placeholders
        assert "_" not in result.final_prompt
    # a pool made only of placeholder-ridden prompts
    opt = GreaterOptimizer(GreaterConfig(final_pool=2))
    us, go = tiny_lm.encode("_")[0], tiny_lm.encode("G")[0]
    state = SearchState(prompt_ids=[go], initial_length=1)
    state.offer(1.0, 0.1, [go, us, us])
    state.offer(0.5, 0.1, [us, go, us])
    context = context_for(tiny_lm, parity_task, max_reasoning_tokens=3)
    pool = opt.final_pool(tiny_lm, state, [go])
    assert pool == [(go,)] and pick_on_dev(context.scorer, pool, context.dev, context.evaluation).dev_acc is not None


def test_final_pick_is_the_best_dev_accuracy_among_the_pool(tiny_lm, parity_task):
    parity_task.dev = parity_task.test
    parity_task.parse = lambda raw: "Yes" if zlib.crc32(raw.encode()) % 2 == 0 else "No"  # right about half the time
    context = context_for(tiny_lm, parity_task, max_reasoning_tokens=3)
    texts = ("Be kind.", "Think hard.", "No.")
    prompts = [tiny_lm.encode(t) for t in texts]
    state = SearchState(prompt_ids=prompts[0], initial_length=3)
    for rank, ids in enumerate(prompts):
        state.offer(1.0 - rank / 10, 0.0, ids)
    # dev accuracy as the test split reports it (evaluation.dev_metric's default, parsed)
    dev_acc = [evaluate_prompt(tiny_lm, parity_task, parity_task.dev, t, context.evaluation, 3).accuracy for t in texts]
    expected = max(range(3), key=lambda i: (dev_acc[i], -i))
    for pool, pick in ((3, expected), (1, 0)):
        candidates = GreaterOptimizer(GreaterConfig(final_pool=pool)).final_pool(tiny_lm, state, [])
        chosen = pick_on_dev(context.scorer, candidates, context.dev, context.evaluation)
        assert list(candidates[chosen.index]) == prompts[pick] and chosen.dev_acc == dev_acc[pick]


def test_paper_bbh_has_the_21_tasks_of_the_reference_scripts():
    assert len(PAPER_BBH_TASKS) == len(set(PAPER_BBH_TASKS)) == 21
    left_out = {"dyck_languages", "word_sorting", "logical_deduction_three_objects"}
    assert not left_out & set(PAPER_BBH_TASKS)
    sweep = (Path(__file__).parents[1] / "conf" / "sweep" / "paper_bbh21.yaml").read_text()
    line = next(line for line in sweep.splitlines() if line.strip().startswith("task:"))
    assert line.split(":", 1)[1].strip().split(",") == [f"bbh/{t}" for t in PAPER_BBH_TASKS]


def _task(answers, **kw):
    examples = [Example(f"Q{i}?", a, id=str(i)) for i, a in enumerate(answers)]
    return Task("t", train=examples, test=examples, initial_prompt="Use care.", **kw)


def test_reference_format_targets_the_answer_right_after_the_dollar():
    letters = reference_format(_task(["(B)", "(A)"], answer_type="choice"), "hyperbaton")
    assert letters.extractor.endswith("is $") and "'$A' or '$B'" in letters.extractor
    assert [letters.target_text(ex) for ex in letters.train] == ["B", "A"]  # the bare letter, one token
    assert letters.format_question(letters.train[0]) == "Q0?. Use" and letters.initial_prompt == "care."
    words = reference_format(_task(["Yes"], answer_type="yes_no"), "causal_judgement")
    assert words.target_text(words.train[0]) == " Yes"  # the script's extractor ends with "$ "
    numbers = reference_format(_task(["12"], answer_type="integer"), "object_counting")
    assert numbers.target_text(numbers.train[0]) == "12" and "$NUMBER$" in numbers.extractor
    with pytest.raises(ValueError, match="no format for 'word_sorting'"):
        reference_format(_task(["a b"]), "word_sorting")


def test_the_gemma_style_is_the_gemma2_scripts_format():
    """run_gemma2_mcq.sh:17-38: '$ A' with a space, **NUMBER** ... is **, and word answers glued to "$"
    (the gemma-2 path appends the gold with no space, AM:407)."""
    letters = reference_format(_task(["(B)"], answer_type="choice"), "hyperbaton", "gemma")
    assert letters.extractor == "Therefore, the final answer (use exact format: '$ A' or '$ B') is $"
    assert letters.target_text(letters.train[0]) == "B"
    words = reference_format(_task(["Yes"], answer_type="yes_no"), "causal_judgement", "gemma")
    assert words.target_text(words.train[0]) == "Yes"
    numbers = reference_format(_task(["12"], answer_type="integer"), "object_counting", "gemma")
    assert numbers.extractor.endswith("(use exactly this format: **NUMBER**, where NUMBER is a positive integer) is **")
    assert numbers.target_text(numbers.train[0]) == "12" and numbers.parse("12** apples") == "12"
    with pytest.raises(ValueError, match="unknown task.reference_style 'mistral'; use llama or gemma"):
        reference_format(_task(["Yes"], answer_type="yes_no"), "navigate", "mistral")


def test_text_after_the_dollar_parses():
    parse = after_dollar(lambda text: text.strip() or None)
    assert parse("B$ because") == "B" and parse("$ 42$") == "42" and parse(" Yes") == "Yes"


def test_answer_length_follows_the_longest_gold(tiny_lm):
    long_gold = " ".join(["apple"] * 10)  # 59 bytes: 60 tokens with the leading space in the byte tokenizer
    task = _task(["a", long_gold])
    assert answer_token_limit(tiny_lm, task, 16) == 60 + 4
    assert answer_token_limit(tiny_lm, _task(["a"]), 16) == 16


def test_tempered_loss_sharpens_but_keeps_the_argmax():
    from greater.engine.losses import span_cross_entropy

    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    targets = torch.tensor([0, 1])
    by_hand = -(torch.log_softmax(logits / 0.2, -1)[[0, 1], [0, 1]]).mean()
    assert span_cross_entropy(logits, targets, 0.2).item() == pytest.approx(by_hand.item())
    with pytest.raises(ValueError, match="must be > 0"):
        span_cross_entropy(logits, targets, 0.0)

"""The text baselines (APE, APO, PE2, TextGrad, OPRO) on a tiny model whose optimizer replies come from a
script, malformed ones included; the shared proposal validator; resume; budget; the final pick on dev."""

from __future__ import annotations

import zlib

import pytest

from greater.lifecycle.checkpoint import load_checkpoint
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize as run_optimizer
from greater.optimizers.base import BudgetConfig
from greater.optimizers.registry import build_optimizer, config_classes
from greater.optimizers.text.validator import ProposalRules, Validator, between, check, clean, normalize, propose_each
from greater.tasks.base import Example, Task
from tests.tiny import tiny_language_model

METHODS = ["ape", "apo", "pe2", "textgrad", "opro"]
GOOD = [
    "Count each move and keep track of where you stand.",
    "Check every step twice before you answer.",
    "Read the question slowly, then answer Yes or No.",
    "List the steps, add them up, then decide.",
    "Think about the direction you face after each turn.",
]
# What small models send back instead of a prompt: nothing, a template, a bare lead-in, a tag-less reply.
MALFORMED = ["", "   ", "[insert the improved instruction here]", "Here is the new instruction:", "Prompt: {task}"]


def scripted_reply(message: str, seed: int, i: int) -> str:
    """A reply chosen by (message, seed, sample): the same on a resumed run, varied across calls."""
    k = zlib.crc32(f"{message}|{seed}|{i}".encode()) % 10
    if k < 4:
        return MALFORMED[k]
    if k == 4:
        return " ".join(message.split()[-12:])  # the end of the meta-prompt echoed back
    text = GOOD[(k + seed) % len(GOOD)]
    for start, end in (("<IMPROVED_VARIABLE>", "</IMPROVED_VARIABLE>"), ("<INS>", "</INS>")):
        if start in message and k != 9:  # k == 9: the tags left out
            return f"Sure. {start}{text}{end} Hope it helps."
    return text


class ScriptedOptimizer:
    """Stands in for `lm.complete`: replies from `scripted_reply`, counted like real generations."""

    def __init__(self, lm, first_malformed=False):
        self.lm, self.first_malformed, self.calls = lm, first_malformed, []

    def __call__(self, messages, max_new_tokens, temperature=0.0, n=1, seed=None):
        self.calls.append({"role": self.lm.role, "n": len(messages) * n, "temperature": temperature, "seed": seed})
        self.lm.count("generations", len(messages) * n)
        replies = [[scripted_reply(m, seed or 0, i) for i in range(n)] for m in messages]
        if self.first_malformed:  # every call's first reply is bad: rejections and retries are certain
            replies[0][0] = MALFORMED[len(self.calls) % len(MALFORMED)]
        return replies


def walk_task(n_dev: int = 0) -> Task:
    examples = [Example(f"{n} steps on, {n % 3} back. At start?", "No", id=str(n)) for n in range(10)]
    return Task("walk", train=examples[:4], dev=examples[4 : 4 + n_dev], test=examples[8:], answer_type="yes_no",
                initial_prompt="Think step by step.")  # fmt: skip


def small_config(method: str, **overrides):
    cls = config_classes()[method]
    sizes = {"n_steps": 2, "n_beam": 2, "n_expand": 2, "batch_size": 2, "train_batch": 4, "n_per_step": 3,
             "n_induce": 2, "n_demos": 2, "reasoning_tokens": 8, "gradient_tokens": 8, "edit_tokens": 8,
             "prompt_tokens": 8, "feedback_tokens": 8, "update_tokens": 8, "n_exemplars": 2}  # fmt: skip
    fields = {k: v for k, v in {**sizes, **overrides}.items() if k in cls.__dataclass_fields__}
    return cls(**fields)


def optimize(method, task, run_dir=None, resume_state=None, budget=None, first_malformed=False, **overrides):
    lm = tiny_language_model()
    script = ScriptedOptimizer(lm, first_malformed)
    lm.complete = script
    context = context_for(
        lm, task, max_reasoning_tokens=3, seed=1, run_dir=run_dir, resume_state=resume_state, budget=budget
    )
    result = run_optimizer(build_optimizer(small_config(method, **overrides)), lm, task, context)
    return result, lm, script


def comparable(history):
    return [h.to_dict() | {"seconds": None, "stage_seconds": None, "model_calls": None} for h in history]


# ---- the validator -------------------------------------------------------------------------------
def test_clean_strips_lead_ins_quotes_chat_tokens_and_commentary():
    assert (
        clean('Sure! Here is the improved prompt: "Count every turn."\n\nThis works because...') == "Count every turn."
    )
    assert clean("New instruction: **Track each step.**<|im_end|>") == "Track each step."
    assert clean("  Think   step\nby step.  ") == "Think step by step."
    assert clean('- "Follow each move in order.') == "Follow each move in order."
    assert clean("## Track each turn.") == "Track each turn."


@pytest.mark.parametrize(
    ("prompt", "reason"),
    [
        ("", "empty"),
        ("Think.", "too_short"),
        ("word " * 81, "too_long"),
        ("Answer [insert answer format] carefully.", "placeholder"),
        ("Use {task} and reason.", "placeholder"),
        ("Please insert a step-by-step plan.", "placeholder"),
        ("The improved prompt is to think more.", "meta_words"),
        ("Think step by step.", "duplicate"),
        ("think step by step", "duplicate"),
        ("Track your position after each move carefully.", None),
    ],
)
def test_check_rejects_what_small_models_send(prompt, reason):
    assert check(prompt, ProposalRules(), seen={normalize("Think step by step.")}) == reason


def test_echo_of_the_meta_prompt_is_rejected_but_the_quoted_prompt_may_stay():
    meta = 'My instruction is "Count each move and keep track." Write a better instruction that fixes the problems.'
    rules = ProposalRules()
    assert check("Write a better instruction that fixes the problems.", rules, set(), meta, ()) == "echo"
    assert (
        check("Count each move and keep track. Then answer.", rules, set(), meta, ("Count each move and keep track.",))
        is None
    )


def test_between_strict_and_lenient():
    assert between("a <INS>x</INS> b", "<INS>", "</INS>") == "x"
    assert between("no tags here", "<INS>", "</INS>") is None
    assert between("x without start</INS>", "<INS>", "</INS>", lenient=True) == "x without start"
    assert between("<INS>open ended", "<INS>", "</INS>", lenient=True) == "open ended"


def test_textgrad_takes_variable_tags_only_with_the_fallback():
    reply = "The improved prompt is: <VARIABLE>Count each move.</VARIABLE>"
    strict = build_optimizer(config_classes()["textgrad"]())
    lenient = build_optimizer(config_classes()["textgrad"](tag_fallback=True))
    assert strict.parse(reply) is None and lenient.parse(reply) == "Count each move."
    assert strict.parse("<IMPROVED_VARIABLE>Go on.</IMPROVED_VARIABLE>") == "Go on."


def test_propose_each_retries_only_the_failed_and_gives_up_after_max_retries():
    validator = Validator(ProposalRules(max_retries=2))
    asked = []

    def ask(messages, attempt):
        asked.append((list(messages), attempt))
        return ["Count every move carefully." if m == "a" and attempt == 1 else "" for m in messages]

    out, rejected = propose_each(validator, ["a", "b"], [(), ()], ask, set())
    assert out == ["Count every move carefully.", None]
    assert asked == [(["a", "b"], 0), (["a", "b"], 1), (["b"], 2)]
    assert validator.accepted == 1 and validator.rejected == {"empty": 4} and len(rejected) == 4


# ---- each method's loop on the tiny model --------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_loop_survives_malformed_replies_keeps_the_start_and_picks_on_dev(method):
    task = walk_task(n_dev=2)
    result, lm, script = optimize(method, task, first_malformed=True)
    assert result.method == method and len(result.history) == 2
    assert result.dev_acc is not None and result.extra["final_split"] == "dev"
    assert [r.step for r in result.history] == [1, 2]
    assert all(call["role"] == "optimizer" for call in script.calls)
    assert lm.usage.of("optimizer").generations > 0 and lm.usage.of("task").rollouts > 0
    proposals = result.extra["proposals"]
    assert proposals["rejected_total"] > 0 and sum(proposals["rejected"].values()) == proposals["rejected_total"]
    assert result.initial_prompt == task.initial_prompt
    assert result.final_prompt == task.initial_prompt or result.final_prompt in GOOD
    for record in result.history:
        assert record.method == method and record.model_calls and record.best_score is not None
        assert all(not c["prompt"] or c["prompt"] in GOOD for c in record.details.get("candidates", []))


@pytest.mark.parametrize("method", METHODS)
def test_resume_ends_like_an_uninterrupted_run(method, tmp_path):
    task = walk_task()
    straight, _, _ = optimize(method, task, n_steps=2)
    optimize(method, task, run_dir=tmp_path, n_steps=1)
    state = load_checkpoint(tmp_path, method)
    assert state["step"] == 1 and len(state["history"]) == 1
    resumed, _, _ = optimize(method, task, run_dir=tmp_path, resume_state=state, n_steps=2)
    assert resumed.final_prompt == straight.final_prompt
    assert comparable(resumed.history) == comparable(straight.history)
    assert resumed.extra["proposals"] == straight.extra["proposals"]
    assert load_checkpoint(tmp_path, method)["step"] == 2
    assert straight.extra["final_split"] == "train" and straight.dev_acc is None


@pytest.mark.parametrize("method", ["apo", "opro"])
def test_budget_stops_between_steps(method):
    result, _, _ = optimize(method, walk_task(), budget=BudgetConfig(max_rollouts=1), n_steps=5)
    assert result.stopped_because and "rollout budget" in result.stopped_because
    assert len(result.history) < 5

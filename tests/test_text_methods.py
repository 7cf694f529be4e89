"""Each text method's own rule, on the tiny model with a scripted optimizer model (as in test_baselines.py)
and a scorer whose accuracies come from a table, so the rule is the only thing under test:
OPRO's ascending, thresholded history; TextGrad's revert; APE inducing at step 1, then resampling; PE2's
template following the placement; APO and PE2 each asking with their own two meta-prompts."""

from __future__ import annotations

import re

import pytest

from greater.engine.rollouts import Rollout, Scorer
from greater.lifecycle.context import context_for
from greater.lifecycle.loop import optimize
from greater.optimizers.registry import build_optimizer
from greater.optimizers.text import ape, apo, pe2
from greater.optimizers.text.pool import Split
from tests.test_baselines import small_config, walk_task
from tests.tiny import tiny_language_model

START = "Think step by step."  # walk_task's initial prompt
PROMPTS = [
    "Count each move and keep track of where you stand.",
    "Check every step twice before you answer.",
    "Read the question slowly, then answer Yes or No.",
    "List the steps, add them up, then decide.",
    "Think about the direction you face after each turn.",
]


class TableScorer(Scorer):
    """The shared scorer with made-up rollouts: a prompt answers the first round(acc x n) examples of any list
    right, acc from `table` (`default` for prompts not in it)."""

    def __init__(self, lm, task, table: dict[str, float], default: float = 0.5):
        super().__init__(lm, task, "after", 3)
        self.table, self.default = table, default

    def rollouts(self, prompts, examples):
        reasoning = self.lm.encode(" one step, then another")
        out = []
        for ids in prompts:
            right = round(self.table.get(self.lm.decode(list(ids)), self.default) * len(examples))
            out.append([Rollout(reasoning, 0.0, i < right) for i in range(len(examples))])
        return out


class Script:
    """Stands in for `lm.complete`: replies from `reply(message, max_new_tokens)`, every call recorded."""

    def __init__(self, lm, reply):
        self.lm, self.reply, self.calls = lm, reply, []

    def __call__(self, messages, max_new_tokens, temperature=0.0, n=1, seed=None):
        self.lm.count("generations", len(messages) * n)
        for m in messages:
            self.calls.append({"message": m, "tokens": max_new_tokens, "temperature": temperature})
        return [[self.reply(m, max_new_tokens) for _ in range(n)] for m in messages]

    def messages(self, since: int = 0) -> list[str]:
        return [c["message"] for c in self.calls[since:]]


def fresh_prompts():
    """A reply function giving a new valid prompt each call."""
    count = iter(range(10**6))
    return lambda message, tokens: f"Count every move in order, then answer; way {next(count)}."


def setup(method, table=None, reply=None, n_dev=0, placement="after", **overrides):
    lm = tiny_language_model()
    task = walk_task(n_dev=n_dev)
    script = Script(lm, reply or fresh_prompts())
    lm.complete = script
    context = context_for(lm, task, placement=placement, max_reasoning_tokens=3, seed=1)
    context.scorer = TableScorer(lm, task, table or {})
    optimizer = build_optimizer(small_config(method, **overrides))
    return optimizer, lm, task, context, script


# ---- OPRO ------------------------------------------------------------------------------------------
SCORE_PAIR = re.compile(r"text:\n(.*?)\nscore:\n(\d+)")


def test_opro_shows_the_best_past_prompts_above_the_threshold_in_ascending_order():
    table = {START: 0.0, PROMPTS[0]: 1.0, PROMPTS[1]: 0.25, PROMPTS[2]: 0.0, PROMPTS[3]: 0.75, PROMPTS[4]: 0.5}
    opt, lm, task, ctx, script = setup("opro", table, n_history=6, score_threshold=0.3)
    run = opt.init_state(lm, task, ctx)
    for prompt in PROMPTS:
        run.pool.add(prompt, 0, 0, "test")
    run.pool.score(run.pool.nodes)
    opt.step(run)
    metas = set(script.messages())
    assert len(metas) == 1  # one meta-prompt, sampled n_per_step times
    shown = [(text, int(score)) for text, score in SCORE_PAIR.findall(metas.pop())]
    # 0.25 and the other 0.0 fall at or below the threshold; the start is always shown; the best comes last.
    assert shown == [(START, 0), (PROMPTS[4], 50), (PROMPTS[3], 75), (PROMPTS[0], 100)]


def test_opro_history_is_cut_to_the_best_n_history():
    table = {START: 0.0, PROMPTS[0]: 1.0, PROMPTS[1]: 0.25, PROMPTS[3]: 0.75, PROMPTS[4]: 0.5}
    opt, lm, task, ctx, _ = setup("opro", table, n_history=2, score_threshold=0.0)
    run = opt.init_state(lm, task, ctx)
    for prompt in PROMPTS:
        run.pool.add(prompt, 0, 0, "test")
    run.pool.score(run.pool.nodes)
    assert opt.history(run) == [(PROMPTS[3], 0.75), (PROMPTS[0], 1.0)]


# ---- TextGrad --------------------------------------------------------------------------------------
NEW = "Count each move and keep track of where you stand."


def textgrad_reply(message, tokens):
    if "<IMPROVED_VARIABLE>" in message:
        return f"<IMPROVED_VARIABLE>{NEW}</IMPROVED_VARIABLE>"
    return "The prompt should ask to track each move."


@pytest.mark.parametrize("revert", [True, False])
def test_textgrad_reverts_an_update_that_scores_lower(revert):
    # The start answers half right (so the batch has failures to give feedback on); the update scores lower.
    opt, lm, task, ctx, script = setup("textgrad", {START: 0.5, NEW: 0.25}, textgrad_reply, revert=revert)
    run = opt.init_state(lm, task, ctx)
    record = opt.step(run)
    assert record.details["proposed"] == NEW and record.details["reverted"] is revert
    assert record.prompt == (START if revert else NEW)
    assert opt.current(run).prompt == record.prompt
    since = len(script.calls)
    opt.step(run)  # the next step works on the prompt this one kept
    feedback = [m for m in script.messages(since) if "You criticise" in m]
    assert feedback and all(f"<VARIABLE>{record.prompt}</VARIABLE>" in m for m in feedback)


def test_textgrad_keeps_an_update_that_scores_higher_and_the_result_reports_the_kept_prompt():
    opt, lm, task, ctx, _ = setup("textgrad", {START: 0.5, NEW: 0.75}, textgrad_reply, n_steps=1)
    result = optimize(opt, lm, task, ctx)
    assert result.history[0].details["reverted"] is False and result.final_prompt == NEW
    opt, lm, task, ctx, _ = setup("textgrad", {START: 0.5, NEW: 0.25}, textgrad_reply, n_steps=1)
    assert optimize(opt, lm, task, ctx).final_prompt == START


# ---- APE -------------------------------------------------------------------------------------------
def test_ape_induces_at_step_1_then_resamples_the_beam():
    opt, lm, task, ctx, script = setup("ape", n_induce=2, n_beam=2, n_expand=2, n_demos=2)
    ctx.scorer.table = {START: 0.25}  # every induced prompt (default 0.5) beats the start
    run = opt.init_state(lm, task, ctx)
    first = opt.step(run)
    inductions = script.messages()
    assert first.details["stage"] == "induction" and len(inductions) == 2
    assert all("What instruction were they most likely given?" in m and "Answer: No" in m for m in inductions)
    induced = [n.prompt for n in run.pool.nodes if n.origin == "induction"]
    assert len(induced) == 2 and all(n.parent == 0 for n in run.pool.nodes[1:])

    since, beam = len(script.calls), [n.prompt for n in run.pool.beam(2)]
    second = opt.step(run)
    assert second.details["stage"] == "resample" and set(beam) == set(induced)
    assert script.messages(since) == [ape.variation_prompt(p, opt.config.max_words) for p in beam for _ in range(2)]
    assert {n.origin for n in run.pool.nodes if n.step == 2} == {"variation"}


def test_ape_without_induction_resamples_from_step_1():
    opt, lm, task, ctx, script = setup("ape", n_induce=0, n_beam=2, n_expand=2)
    run = opt.init_state(lm, task, ctx)
    assert opt.step(run).details["stage"] == "resample"
    assert script.messages() == [ape.variation_prompt(START, opt.config.max_words)] * 2


# ---- PE2 and APO -----------------------------------------------------------------------------------
BEAM = {"n_beam": 1, "n_expand": 2, "batch_size": 2, "train_batch": 4}


def critic_reply(critique_tokens):
    prompts = fresh_prompts()
    count = iter(range(10**6))

    def reply(message, tokens):
        return f"Critique {next(count)}: the prompt skips the turns." if tokens == critique_tokens else prompts("", 0)

    return reply


@pytest.mark.parametrize("placement", ["after", "before", "system"])
def test_pe2_shows_the_template_of_the_run_placement(placement):
    opt, lm, task, ctx, script = setup(
        "pe2", {START: 0.5}, critic_reply(13), placement=placement, reasoning_tokens=13, prompt_tokens=14, **BEAM
    )
    run = opt.init_state(lm, task, ctx)
    opt.step(run)
    analyses = [c["message"] for c in script.calls if c["tokens"] == 13]
    assert len(analyses) == 2
    for name, template in pe2.TEMPLATES.items():
        shown = f"## Full template\n{template.replace('<prompt>', START)}\n"
        assert all((shown in m) is (name == placement) for m in analyses)


def test_pe2_refuses_a_placement_it_has_no_template_for():
    with pytest.raises(ValueError, match="placement='inline' has no template"):
        pe2.template_for("inline")


@pytest.mark.parametrize(
    ("method", "calls"),
    [
        ("apo", {"gradient_tokens": 11, "gradient_temperature": 0.3, "edit_tokens": 12, "edit_temperature": 0.0}),
        ("pe2", {"reasoning_tokens": 11, "reasoning_temperature": 0.3, "prompt_tokens": 12, "prompt_temperature": 0.6}),
    ],
)
def test_beam_rewrite_asks_with_the_method_own_critique_then_rewrite(method, calls):
    opt, lm, task, ctx, script = setup(method, {START: 0.5}, critic_reply(11), **BEAM, **calls)
    run = opt.init_state(lm, task, ctx)
    record = opt.step(run)
    critiques = [c for c in script.calls if c["tokens"] == 11]
    rewrites = [c for c in script.calls if c["tokens"] == 12]
    assert len(critiques) == 2 and script.calls[:2] == critiques  # the critiques come first, then the rewrites
    temperatures = list(calls.values())[1::2]
    assert {c["temperature"] for c in critiques} == {temperatures[0]}
    assert rewrites[0]["temperature"] == temperatures[1]
    own, other = (apo, pe2) if method == "apo" else (pe2, apo)
    assert all(marker in c["message"] for c in critiques for marker in CRITIQUE[own.__name__])
    assert not any(marker in c["message"] for c in critiques for marker in CRITIQUE[other.__name__])
    # Each rewrite request carries its own critique, under the method's own heading.
    notes = record.details["critiques"]
    for note, rewrite in zip(notes, rewrites):
        assert f"{REWRITE[own.__name__]}\n{note}" in rewrite["message"]
    assert all(REWRITE[other.__name__] not in c["message"] for c in rewrites)
    assert [n.info["critique"] for n in run.pool.nodes[1:]] == notes[: len(run.pool.nodes) - 1]


CRITIQUE = {  # what only each method's critique request says
    apo.__name__: ["possible reasons why my instruction", apo.ROLE],
    pe2.__name__: ["## Full template", pe2.QUESTIONS],
}
REWRITE = {apo.__name__: "What is wrong with my instruction:", pe2.__name__: "## Analysis"}


def test_search_split_is_dev_when_the_run_has_one_and_the_result_reports_dev():
    opt, lm, task, ctx, _ = setup("apo", {START: 0.5}, critic_reply(8), n_dev=2, n_steps=1, **BEAM)
    result = optimize(opt, lm, task, ctx)
    assert result.extra["search_split"] == "dev" and result.dev_acc is not None
    assert Split("dev") is Split.dev

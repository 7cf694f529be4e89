"""TextGrad (Yuksekgonul et al., 2024) as its BBH prompt-optimization harness runs it.

One prompt is the variable. Each step takes the next batch of a shuffled pass over train, runs the prompt,
and evaluates every answer (the "loss"): by the shared scorer's exact match by default, or by asking the model
to judge. For each wrong answer the optimizer model writes feedback on the prompt (criticism only, never a
rewrite; no feedback for right answers). An update step then returns the new prompt between tags. The new
prompt is scored on the selection split (dev, or train without one) and reverted when it scores lower.
The authors' two backward calls per example (loss -> answer -> prompt) are merged into one here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from greater.config import Choice, hyperparameter
from greater.optimizers.text.pool import Node
from greater.optimizers.text.proposer import seed_of
from greater.optimizers.text.search import Outcome, TextOptimizer, TextRun, TextSearchConfig
from greater.optimizers.text.validator import between
from greater.tasks.base import Example

START, END = "<IMPROVED_VARIABLE>", "</IMPROVED_VARIABLE>"
ROLE = "the prompt a language model reads with each question; it sets how the model reasons and answers"


class TextGradLoss(Choice):
    exact = "exact"  # the shared scorer's exact match
    judge = "judge"  # the model judges each answer


@dataclass
class TextGradConfig(TextSearchConfig):
    implementation: ClassVar[str] = "greater.optimizers.text.textgrad:TextGradOptimizer"

    name: str = "textgrad"
    n_steps: int = 12  # 3 epochs x 4 steps in the authors' harness
    # the harness stops each pass over train after this many batches
    steps_per_epoch: int = hyperparameter(4, min=1)
    batch_size: int = hyperparameter(3, min=1)
    loss: TextGradLoss = hyperparameter(TextGradLoss.exact)
    feedback_tokens: int = hyperparameter(512, min=1)
    update_tokens: int = hyperparameter(256, min=1)
    temperature: float = hyperparameter(0.0, min=0)  # the harness decodes every call greedily
    judge_tokens: int = hyperparameter(32, min=1)
    # keep the old prompt when the new one scores lower on the selection split
    revert: bool = hyperparameter(True)
    # also take an update written inside <VARIABLE> tags (small models' habit)
    tag_fallback: bool = hyperparameter(False)


def judge_prompt(question: str, answer: str, response: str) -> str:
    return (
        f"Question: {question}\nCorrect answer: {answer}\nResponse: {response}\n\n"
        "Does the response reach the correct answer? Reply 1 for yes or 0 for no, between <ACCURACY> and </ACCURACY>."
    )


def feedback_prompt(prompt: str, question: str, response: str, verdict: str) -> str:
    return (
        f"You criticise {ROLE}. Give only criticism and ways to improve; do not rewrite the prompt.\n\n"
        f"<VARIABLE>{prompt}</VARIABLE>\n\nWith this prompt the model was asked:\n{question}\n\n"
        f"It answered:\n{response}\n\nEvaluation: {verdict}\n\n"
        "How should the prompt change so that the model answers questions like this one correctly?"
    )


def update_prompt(prompt: str, feedback: list[str], max_words: int) -> str:
    blocks = "\n".join(f"<FEEDBACK>{f.strip()}</FEEDBACK>" for f in feedback)
    return (
        f"You improve {ROLE}, using feedback that may be noisy.\n\n<VARIABLE>{prompt}</VARIABLE>\n\n{blocks}\n\n"
        f"Write the improved prompt, at most {max_words} words, between {START} and {END}."
    )


class TextGradOptimizer(TextOptimizer):
    name = "textgrad"
    config_class = TextGradConfig
    config: TextGradConfig

    def start(self, run: TextRun) -> None:
        super().start(run)
        run.state["current"] = 0

    def current(self, run: TextRun) -> Node:
        return run.pool.nodes[run.state.get("current", 0)]

    def batch(self, run: TextRun) -> list[Example]:
        """The step's batch: the next slice of this epoch's shuffled order over train."""
        c, train = self.config, run.ctx.train
        epoch, index = divmod(run.step - 1, c.steps_per_epoch)
        order = list(train)
        random.Random(seed_of(run.ctx.seed, self.name, "epoch", epoch)).shuffle(order)
        return [order[(index * c.batch_size + i) % len(order)] for i in range(c.batch_size)]

    def verdicts(self, run: TextRun, batch: list[Example], reasonings: list[str], correct: list[bool]):
        """Per example: (is it right, the evaluation text the feedback reads)."""
        exact = [
            (ok, "correct" if ok else f"wrong; the correct answer is {ex.answer}") for ex, ok in zip(batch, correct)
        ]
        if self.config.loss == "exact":
            return exact
        asks = [judge_prompt(run.task.format_question(ex), ex.answer, r) for ex, r in zip(batch, reasonings)]
        replies = run.proposer.ask(asks, self.config.judge_tokens, 0.0, seed=run.seeds("judge"))
        out = []
        for (ok, text), reply in zip(exact, replies):
            mark = (between(reply[0], "<ACCURACY>", "</ACCURACY>") or "").strip()
            out.append((mark == "1", f"judged {mark}") if mark in ("0", "1") else (ok, text))  # unparsed: exact
        return out

    def take_step(self, run: TextRun) -> Outcome:
        c, split = self.config, run.pool.split
        current = self.current(run)
        batch = self.batch(run)
        with self.stages("scoring"):
            scored = run.ctx.scorer.score_text(current.prompt, batch)
        verdicts = self.verdicts(run, batch, scored.reasonings, scored.correct)
        wrong = [(ex, r, v) for ex, r, (ok, v) in zip(batch, scored.reasonings, verdicts) if not ok]
        details = {"batch_acc": scored.accuracy, "verdicts": [v for _, v in verdicts], "feedback": []}
        if not wrong:  # no loss, no feedback: the prompt stays
            return Outcome(current, {**details, "summary": "no wrong answers, no update"})
        asks = [feedback_prompt(current.prompt, run.task.format_question(ex), r, v) for ex, r, v in wrong]
        replies = run.proposer.ask(asks, c.feedback_tokens, c.temperature, seed=run.seeds("feedback"))
        feedback = [r[0].strip()[: 4 * c.feedback_tokens] for r in replies]
        meta = update_prompt(current.prompt, feedback, c.max_words)
        quoted = [(current.prompt,)]
        prompts, rejected = run.proposer.propose([meta], quoted, c.update_tokens, c.temperature, "update", self.parse)
        details |= {"feedback": feedback, "rejected": rejected}
        if prompts[0] is None:
            return Outcome(current, {**details, "summary": f"no valid update ({len(rejected)} rejected)"})
        new = run.expand([current], prompts, "update", [{}])[0]
        reverted = c.revert and new.scores[split] < current.scores[split]
        chosen = current if reverted else new
        run.state["current"] = chosen.index
        summary = f"{'reverted' if reverted else 'updated'}: {split} {new.scores[split]:.2f}"
        return Outcome(chosen, {**details, "summary": summary, "proposed": new.prompt, "reverted": reverted})

    def parse(self, text: str) -> str | None:
        """The update between the tags; None (a "no_tags" rejection) when they are missing."""
        found = between(text, START, END)
        if found is None and self.config.tag_fallback:
            found = between(text, "<VARIABLE>", "</VARIABLE>")
        return found

    def candidates(self, run: TextRun) -> list[Node]:
        return [self.current(run)]

    def memo_prompts(self, run: TextRun) -> list[str]:
        return [self.current(run).prompt]

"""OPRO (Yang et al., 2024): the optimizer model reads past prompts with their scores and writes new ones.

Each step builds one meta-prompt: the best past prompts with their train accuracy (0-100), in ascending
order, then a few train questions with their gold answers and a marker where the prompt goes, then a request
for a new, better prompt between <INS> tags. Several prompts are sampled (hot), screened, and scored on the
whole train split. The final prompt is the best of the top few by train score, picked on dev.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.config import Placement, hyperparameter
from greater.optimizers.text.placement import for_placement
from greater.optimizers.text.pool import Node, Split
from greater.optimizers.text.search import Outcome, TextOptimizer, TextRun, TextSearchConfig
from greater.optimizers.text.validator import between

START, END = "<INS>", "</INS>"
# Where the meta-prompt says the instruction goes, one per placement (a test checks that every Placement has one).
WHERE: dict[Placement, str] = {
    Placement.after: "right after each question",
    Placement.before: "right before each question",
    Placement.system: "as the system message of each conversation",
}


@dataclass
class OPROConfig(TextSearchConfig):
    implementation: ClassVar[str] = "greater.optimizers.text.opro:OPROOptimizer"

    name: str = "opro"
    n_steps: int = 20  # meta-prompt rounds (the authors run 200 with a large optimizer model)
    n_per_step: int = hyperparameter(8, min=1)  # prompts sampled per round
    temperature: float = hyperparameter(1.0, min=0)
    prompt_tokens: int = hyperparameter(128, min=1)
    n_history: int = hyperparameter(20, min=1)  # best past prompts shown, ascending by score
    # past prompts at or below this train accuracy are not shown (the start always is)
    score_threshold: float = hyperparameter(0.0)
    # train questions shown each round (a fresh sample every round)
    n_exemplars: int = hyperparameter(3, min=0)
    n_final: int = 5


def meta_prompt(where: str, history: list[tuple[str, float]], exemplars: str, max_words: int) -> str:
    past = "\n\n".join(f"text:\n{p}\nscore:\n{round(100 * s)}" for p, s in history)
    return (
        f"Your task is to write an instruction that is placed {where} and helps a language model solve "
        "problems like the ones below. Earlier instructions and their scores (0 to 100, higher is better), "
        f"from lowest to highest:\n\n{past}\n\nSome of the problems:\n\n{exemplars}\n\n"
        "Write a new instruction that differs from every one above and scores higher than all of them. "
        f"Keep it general and under {max_words} words, and put it between {START} and {END}."
    )


def where(placement: str) -> str:
    """Where the meta-prompt says the instruction goes, for the run's placement."""
    return for_placement(WHERE, placement, "opro", "is not described")


class OPROOptimizer(TextOptimizer):
    name = "opro"
    config_class = OPROConfig
    config: OPROConfig
    search_split = Split.train  # scores guide the search on train; the final pick is on dev

    def history(self, run: TextRun) -> list[tuple[str, float]]:
        """The best past prompts above the score threshold (the start always), ascending: the best comes last."""
        shown = [
            n for n in run.pool.ranked()[: self.config.n_history]
            if n.index == 0 or n.scores[Split.train] > self.config.score_threshold
        ]  # fmt: skip
        return [(n.prompt, n.scores[Split.train]) for n in reversed(shown)]

    def exemplars(self, run: TextRun) -> str:
        train = run.ctx.train
        picked = run.seeds.rng("exemplars").sample(train, min(self.config.n_exemplars, len(train)))
        return "\n\n".join(
            f"Q: {run.task.format_question(ex).strip()}\n{START}\nCorrect answer: {ex.answer}" for ex in picked
        )

    def take_step(self, run: TextRun) -> Outcome:
        c = self.config
        history = self.history(run)
        meta = meta_prompt(where(run.ctx.placement), history, self.exemplars(run), c.max_words)
        quoted = tuple(p for p, _ in history)
        parse = lambda text: between(text, START, END, lenient=True)  # noqa: E731
        prompts, rejected = run.proposer.propose(
            [meta] * c.n_per_step, [quoted] * c.n_per_step, c.prompt_tokens, c.temperature, "sample", parse
        )
        children = run.expand([run.pool.best] * c.n_per_step, prompts, "sample", [{}] * c.n_per_step)
        return run.outcome(children, rejected, shown=len(history))

    def candidates(self, run: TextRun) -> list[Node]:
        return run.pool.ranked()[: self.config.n_final]

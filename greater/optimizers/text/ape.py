"""APE (Zhou et al., 2023) in its iterative form, as the PE2 codebase runs it (how GReaTer ran it).

Optionally, step 1 induces instructions from train demonstrations (question and gold answer, no reasoning).
Every later step resamples the beam: for each of the best prompts so far (any step), the optimizer model
samples variations that keep its meaning. Candidates are scored on the selection split (dev, or train
without one); the final prompt is the best there. The start stays in the pool, because a prompt induced from
answers alone tends to ask for the answer without reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.config import hyperparameter
from greater.optimizers.text.search import Outcome, TextOptimizer, TextRun, TextSearchConfig


@dataclass
class APEConfig(TextSearchConfig):
    implementation: ClassVar[str] = "greater.optimizers.text.ape:APEOptimizer"

    name: str = "ape"
    n_steps: int = 4  # step 1 induces when n_induce > 0; every step resamples the beam
    # instructions induced from demonstrations at step 1 (0: start from the start prompt only)
    n_induce: int = hyperparameter(4, min=0)
    n_demos: int = hyperparameter(5, min=1)  # demonstrations per induction query
    n_beam: int = hyperparameter(4, min=1)  # prompts resampled each step
    n_expand: int = hyperparameter(4, min=1)  # variations sampled per beam prompt
    # sampling temperature of the proposer (induction and variations)
    temperature: float = hyperparameter(0.7, min=0)
    prompt_tokens: int = hyperparameter(80, min=1)


def induction_prompt(demos: str, max_words: int) -> str:
    return (
        "Someone was given a single instruction and then answered each question below by following it.\n\n"
        f"{demos}\n\nWhat instruction were they most likely given? Answer with that instruction only, "
        f"in at most {max_words} words."
    )


def variation_prompt(prompt: str, max_words: int) -> str:
    return (
        f'Here is an instruction for answering questions:\n"{prompt}"\n\n'
        f"Write a different version of it with the same meaning, in at most {max_words} words. "
        "Reply with the new instruction only."
    )


class APEOptimizer(TextOptimizer):
    name = "ape"
    config_class = APEConfig
    config: APEConfig

    def take_step(self, run: TextRun) -> Outcome:
        if run.step == 1 and self.config.n_induce > 0:
            return self.induce(run)
        return self.resample(run)

    def induce(self, run: TextRun) -> Outcome:
        c, train = self.config, run.ctx.train
        metas = []
        for k in range(c.n_induce):
            demos = run.seeds.rng("demos", k).sample(train, min(c.n_demos, len(train)))
            text = "\n\n".join(f"Question: {run.task.format_question(ex).strip()}\nAnswer: {ex.answer}" for ex in demos)
            metas.append(induction_prompt(text, c.max_words))
        prompts, rejected = run.proposer.propose(metas, [()] * len(metas), c.prompt_tokens, c.temperature, "induce")
        children = run.expand([run.pool.start] * len(metas), prompts, "induction", [{}] * len(metas))
        return run.outcome(children, rejected, stage="induction")

    def resample(self, run: TextRun) -> Outcome:
        c = self.config
        parents = [parent for parent in run.pool.beam(c.n_beam) for _ in range(c.n_expand)]
        metas = [variation_prompt(parent.prompt, c.max_words) for parent in parents]
        quoted = [(parent.prompt,) for parent in parents]
        prompts, rejected = run.proposer.propose(metas, quoted, c.prompt_tokens, c.temperature, "resample")
        children = run.expand(parents, prompts, "variation", [{}] * len(parents))
        return run.outcome(children, rejected, stage="resample")

"""APE (Zhou et al., 2023) in its iterative form, as the PE2 codebase runs it (how GReaTer ran it).

Optionally, step 1 induces instructions from train demonstrations (question and gold answer, no reasoning).
Every later step resamples the beam: for each of the best prompts so far (any step), the optimizer model
samples variations that keep its meaning. Candidates are scored on the selection split (dev, or train
without one); the final prompt is the best there. The start stays in the pool, because a prompt induced from
answers alone tends to ask for the answer without reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass

from greater.config import hyperparameter
from greater.optimizers.registry import register_optimizer
from greater.optimizers.text.search import Job, Outcome, Search, TextOptimizer, TextSearchConfig


@dataclass
class APEConfig(TextSearchConfig):
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


@register_optimizer
class APEOptimizer(TextOptimizer):
    name = "ape"
    config_class = APEConfig
    config: APEConfig

    def step(self, search: Search) -> Outcome:
        if search.step == 1 and self.config.n_induce > 0:
            return self.induce(search)
        return self.resample(search)

    def induce(self, search: Search) -> Outcome:
        c, train = self.config, search.context.train
        metas = []
        for k in range(c.n_induce):
            demos = search.rng("demos", k).sample(train, min(c.n_demos, len(train)))
            text = "\n\n".join(
                f"Question: {search.task.format_question(ex).strip()}\nAnswer: {ex.answer}" for ex in demos
            )
            metas.append(induction_prompt(text, c.max_words))
        prompts, rejected = search.propose(metas, [()] * len(metas), c.prompt_tokens, c.temperature, "induce")
        jobs = [Job(search.nodes[0], [], k) for k in range(len(metas))]
        children = search.expand(jobs, prompts, "induction", [{}] * len(metas))
        return search.beam_outcome(children, rejected, stage="induction")

    def resample(self, search: Search) -> Outcome:
        c = self.config
        jobs = [Job(parent, [], k) for parent in search.beam(c.n_beam) for k in range(c.n_expand)]
        metas = [variation_prompt(job.parent.prompt, c.max_words) for job in jobs]
        quoted = [(job.parent.prompt,) for job in jobs]
        prompts, rejected = search.propose(metas, quoted, c.prompt_tokens, c.temperature, "resample")
        children = search.expand(jobs, prompts, "variation", [{}] * len(jobs))
        return search.beam_outcome(children, rejected, stage="resample")

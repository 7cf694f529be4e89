"""APO / ProTeGi (Pryzant et al., 2023) as the PE2 codebase runs it, which is how GReaTer ran it.

The beam-rewrite search (beam.py) with APO's two meta-prompts: for each child, the optimizer model sees a few
of the parent's failures and writes reasons the prompt fails (the critique, which the paper calls a "textual
gradient"; sampled), then an edited prompt that addresses them (greedy). Children are scored on the search
split (dev, or train without one); the final prompt is the best there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.config import hyperparameter
from greater.optimizers.text.beam import BeamRewrite, Call, MetaPrompts
from greater.optimizers.text.search import TextRun, TextSearchConfig

ROLE = "I am writing an instruction that a language model reads together with each question it answers."


@dataclass
class APOConfig(TextSearchConfig):
    implementation: ClassVar[str] = "greater.optimizers.text.apo:APOOptimizer"

    name: str = "apo"
    n_steps: int = 3  # expansion rounds (PE2's train_steps 4 = 3 expansions)
    n_beam: int = hyperparameter(4, min=1)  # prompts expanded each round
    n_expand: int = hyperparameter(4, min=1)  # children per beam prompt, each from its own failures
    batch_size: int = hyperparameter(2, min=1)  # failures shown per child
    # train examples each beam prompt is run on to find its failures (0: all)
    train_batch: int = hyperparameter(20, min=0)
    n_reasons: int = hyperparameter(5, min=1)  # reasons asked for in the gradient
    gradient_tokens: int = hyperparameter(256, min=1)
    gradient_temperature: float = hyperparameter(0.7, min=0)
    edit_tokens: int = hyperparameter(80, min=1)
    edit_temperature: float = hyperparameter(0.0, min=0)


def failures_text(prompt: str, block: str) -> str:
    return f'{ROLE}\nMy current instruction is:\n"{prompt}"\n\nWith it, the model got these examples wrong:\n\n{block}'


def critique_prompt(prompt: str, block: str, n_reasons: int) -> str:
    return (
        f"{failures_text(prompt, block)}\n\nGive {n_reasons} possible reasons why my instruction led the model "
        "to these wrong answers. Write only the reasons."
    )


def edit_prompt(prompt: str, block: str, critique: str, max_words: int) -> str:
    return (
        f"{failures_text(prompt, block)}\n\nWhat is wrong with my instruction:\n{critique.strip()}\n\n"
        f"Write a better instruction that fixes these problems, in at most {max_words} words. "
        "Reply with the new instruction and nothing else."
    )


class APOOptimizer(BeamRewrite):
    name = "apo"
    config_class = APOConfig
    config: APOConfig

    def meta_prompts(self, run: TextRun) -> MetaPrompts:
        c = self.config
        return MetaPrompts(
            critique=lambda prompt, block: critique_prompt(prompt, block, c.n_reasons),
            critique_call=Call(c.gradient_tokens, c.gradient_temperature),
            rewrite=lambda prompt, block, critique: edit_prompt(prompt, block, critique, c.max_words),
            rewrite_call=Call(c.edit_tokens, c.edit_temperature),
            seed_tag="gradient",
        )

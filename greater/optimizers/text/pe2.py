"""PE2 (Ye et al., 2024): prompt engineering a prompt engineer, as its public code runs it.

The beam-rewrite search of APO (beam.py) with PE2's meta-prompts: each child comes from a richer one, with
the task description, the context specification (the full template the prompt sits in), the failures, and a
step-by-step reasoning template (is the answer right, did the model follow the prompt, does the prompt
describe the task, is an edit needed, which). The model answers that (step 1, sampled), then writes the
refined prompt (step 2).
The two turns of the authors' chat are sent as two single-turn requests, the second carrying the first's
analysis, so any model with or without a chat template can play the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from greater.config import Placement, hyperparameter
from greater.optimizers.text.beam import BeamRewrite, Call, MetaPrompts
from greater.optimizers.text.placement import for_placement
from greater.optimizers.text.search import TextRun, TextSearchConfig

INTRO = (
    "A prompt is a piece of text joined with each input so that a language model writes the wanted output. "
    "We refine a prompt in two steps: first we examine the current prompt, the full template it sits in and "
    "some examples the model got wrong; then we write a refined prompt."
)
QUESTIONS = (
    "The correct answers are right; the prompt may not be. For each example, answer in turn:\n"
    "1. Is the model's answer the correct answer?\n"
    "2. Did the model follow the prompt?\n"
    "3. Does the prompt describe the task these examples show?\n"
    "4. Does the prompt need an edit?\n"
    "5. If so, which edit, exactly?"
)
# The context specification: the template the prompt sits in, one per placement (a test checks that every
# Placement has one).
TEMPLATES: dict[Placement, str] = {
    Placement.after: "<question>\n<prompt>",
    Placement.before: "<prompt>\n<question>",
    Placement.system: "[system] <prompt>\n[user] <question>",
}


@dataclass
class PE2Config(TextSearchConfig):
    implementation: ClassVar[str] = "greater.optimizers.text.pe2:PE2Optimizer"

    name: str = "pe2"
    n_steps: int = 3  # expansion rounds (train_steps 4 in the authors' scripts = 3 expansions)
    n_beam: int = hyperparameter(4, min=1)
    n_expand: int = hyperparameter(4, min=1)
    batch_size: int = hyperparameter(2, min=1)  # failures shown per child
    # train examples each beam prompt is run on to find its failures (0: all)
    train_batch: int = hyperparameter(20, min=0)
    reasoning_tokens: int = hyperparameter(768, min=1)  # step 1: the analysis
    reasoning_temperature: float = hyperparameter(0.5, min=0)
    prompt_tokens: int = hyperparameter(128, min=1)  # step 2: the refined prompt
    prompt_temperature: float = hyperparameter(0.7, min=0)


def analysis_prompt(prompt: str, template: str, block: str) -> str:
    return (
        f"{INTRO}\n\n## Current prompt\n{prompt}\n\n## Full template\n{template}\n"
        "(<question> is replaced by each input; the prompt may come before or after it.)\n\n"
        f"## Examples\n{block}\n\n## Instructions\n{QUESTIONS}"
    )


def refine_prompt(prompt: str, block: str, analysis: str, max_words: int) -> str:
    return (
        f"{INTRO}\n\n## Current prompt\n{prompt}\n\n## Examples\n{block}\n\n## Analysis\n{analysis.strip()}\n\n"
        "## Instructions\nUsing the analysis, write a refined prompt so that the model answers these examples "
        f"correctly. Use at most {max_words} words. Reply with the refined prompt only."
    )


def template_for(placement: str) -> str:
    """The full template a prompt sits in, for the run's placement."""
    return for_placement(TEMPLATES, placement, "pe2", "has no template")


class PE2Optimizer(BeamRewrite):
    name = "pe2"
    config_class = PE2Config
    config: PE2Config

    def meta_prompts(self, run: TextRun) -> MetaPrompts:
        c, template = self.config, template_for(run.ctx.placement)
        return MetaPrompts(
            critique=lambda prompt, block: analysis_prompt(prompt, template.replace("<prompt>", prompt), block),
            critique_call=Call(c.reasoning_tokens, c.reasoning_temperature),
            rewrite=lambda prompt, block, analysis: refine_prompt(prompt, block, analysis, c.max_words),
            rewrite_call=Call(c.prompt_tokens, c.prompt_temperature),
            seed_tag="analysis",
        )

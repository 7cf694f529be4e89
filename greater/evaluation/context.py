"""Every example against the model's context window, before any generation.

A question longer than the model's positions does not fail: transformers reads past the window and the
numbers mean nothing, slowly. What one example needs is its chat with the prompt, the reasoning budget
(max_reasoning_tokens), the extractor and the answer; the first example that needs more than the model has
ends the run in one line naming it, its length and the limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from greater.engine.frame import extractor_ids, prompt_slots
from greater.evaluation.evaluator import answer_token_limit

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel
    from greater.tasks.base import Example, Task


class ContextError(ValueError):
    """An example longer than the model's context window; the message names it, its length and the limit."""


def check_context(
    lm: LanguageModel,
    task: Task,
    examples: list[Example],
    prompt: str,
    placement: str,
    max_reasoning_tokens: int,
    max_answer_tokens: int,
) -> None:
    """Raise ContextError when an example with `prompt` and the reasoning and answer budgets needs more
    positions than `lm` has (nothing when the model's config does not say how many)."""
    limit = lm.max_positions
    if limit is None or not examples:
        return
    prompt_ids = lm.encode(prompt)
    after = len(extractor_ids(lm, task)) + answer_token_limit(lm, task, max_answer_tokens)
    lengths = [len(slot.with_prompt(prompt_ids)) for slot in prompt_slots(lm, task, examples, placement)]
    over = [i for i, n in enumerate(lengths) if n + max_reasoning_tokens + after > limit]
    if not over:
        return
    first = examples[over[0]]
    n = lengths[over[0]]
    more = f" (and {len(over) - 1} more example(s))" if len(over) > 1 else ""
    raise ContextError(
        f"example {first.where or first.id or first.question[:40]!r} is {n} tokens with its chat and the prompt, "
        f"{n + max_reasoning_tokens + after} with max_reasoning_tokens={max_reasoning_tokens} and {after} for the "
        f"extractor and answer: more than the {limit} positions of model {lm.name}{more}; shorten or drop it, "
        "or lower max_reasoning_tokens"
    )

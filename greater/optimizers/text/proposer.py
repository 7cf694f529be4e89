"""The writer's side of a text method: ask it (the task model by default, counted under the "optimizer" role;
another model or an endpoint under "writer": greater/writers/), screen what it proposes with the shared
validator, and seed every call so a resumed run asks exactly what an uninterrupted one would."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from greater.optimizers.text.validator import ProposalRules, Validator, propose_each

if TYPE_CHECKING:
    from greater.optimizers.loop import Stages
    from greater.writers.base import Writer


def seed_of(*parts: Any) -> int:
    """A stable seed for one call (same on resume): a hash of the parts that name it."""
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


@dataclass
class Seeds:
    """Seeds of one run's calls: a hash of the run seed, the method, the current step and the call's parts."""

    run_seed: int
    method: str
    step: int = 0  # the step being taken (the text run moves it)

    def __call__(self, *parts: Any) -> int:
        return seed_of(self.run_seed, self.method, self.step, *parts)

    def rng(self, *parts: Any) -> random.Random:
        return random.Random(self(*parts))


class Proposer:
    def __init__(
        self,
        writer: Writer,
        rules: ProposalRules,
        retry_temperature: float,
        seeds: Seeds,
        stages: Stages,
        seen: Callable[[], set[str]],  # the prompts a proposal may not repeat (the pool's)
    ) -> None:
        self.writer, self.retry_temperature, self.seeds, self.stages = writer, retry_temperature, seeds, stages
        self.seen = seen
        self.validator = Validator(rules)

    def ask(self, messages: list[str], max_new_tokens: int, temperature: float, n: int = 1, seed: int = 0):
        """The writer's replies, [message][sample]."""
        if not messages:
            return []
        with self.stages("optimizer"):
            return self.writer.complete(messages, max_new_tokens, temperature=temperature, n=n, seed=seed)

    def propose(
        self,
        metas: list[str],
        quoted: list[tuple[str, ...]],
        max_new_tokens: int,
        temperature: float,
        tag: str,
        parse: Callable[[str], str | None] | None = None,
    ) -> tuple[list[str | None], list[dict[str, str]]]:
        """One screened prompt per meta-prompt (None where every try failed), and the rejected replies.
        A retry samples at least `retry_temperature` hot: a greedy retry would repeat itself."""

        def ask(messages: list[str], attempt: int) -> list[str]:
            hot = temperature if attempt == 0 else max(temperature, self.retry_temperature)
            return [r[0] for r in self.ask(messages, max_new_tokens, hot, seed=self.seeds(tag, attempt))]

        return propose_each(self.validator, metas, quoted, ask, self.seen(), parse)

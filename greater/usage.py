"""The work a run does, one typed `Usage` per role, in a `Ledger` the runner owns and hands to every model (and
writer) working for the run.

Roles: "task" (rolling out a task prompt: scoring, evaluation), "optimizer" (a method's own generations, e.g. a
meta-prompt, when the task model writes) and "writer" (another model or an endpoint writing). The budget reads
the ledger; result.json's `compute`, the checkpoint's counters and every step's `model_calls` are its flat form,
"<role>.<what>" -> amount (`Ledger.flat`), holding exactly what was counted, in the order first counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass
class Usage:
    """One role's work. Amounts keep the type they were counted with (counts are ints, seconds and cost
    floats), so the flat form reads as the counters always have."""

    tokens_generated: int = 0
    tokens_forwarded: int = 0  # prefills, loss and gradient passes (an endpoint's prompt tokens)
    tokens_reused: int = 0  # reasoning tokens accepted from a draft instead of decoded
    generations: int = 0
    calls: int = 0  # batched passes (an endpoint's requests)
    rollouts: int = 0  # (prompt, example) reasonings generated to score prompts
    # Greedy generations read from the generation cache on disk instead of decoded, and those decoded and
    # written to it (greater.engine.generation_cache; counted only while it is on). A read one is still counted
    # above as the work it stands for (generations, tokens, rollouts): budgets and compute tables do not depend
    # on what earlier runs left there; `seconds` is the time really spent.
    cache_hits: int = 0
    cache_misses: int = 0
    seconds: float = 0.0
    cost: float = 0.0  # what an endpoint reported it cost

    @property
    def tokens(self) -> float:
        """Tokens generated and forwarded: what the token budget counts."""
        return self.tokens_generated + self.tokens_forwarded


WHATS = tuple(f.name for f in fields(Usage))


class Ledger:
    """The run's work by role. Count with `count(role, what, amount)`; read a role with `of(role)` (zeros for a
    role that did nothing), a sum over roles with `total(what)`, everything with `flat()`."""

    def __init__(self) -> None:
        self.roles: dict[str, Usage] = {}
        self._counted: dict[tuple[str, str], None] = {}  # (role, what) in the order first counted

    def count(self, role: str, what: str, amount: float = 1) -> None:
        if what not in WHATS:
            raise ValueError(f"'{what}' is not a kind of usage; count one of {', '.join(WHATS)}")
        usage = self.roles.setdefault(role, Usage())
        setattr(usage, what, getattr(usage, what) + amount)
        self._counted[role, what] = None

    def of(self, role: str) -> Usage:
        """A role's usage (a fresh zero one, not kept, for a role that did nothing)."""
        return self.roles.get(role) or Usage()

    def total(self, what: str) -> float:
        """`what` summed over the roles, e.g. total("tokens_generated")."""
        return sum(getattr(usage, what) for usage in self.roles.values())

    def counted(self, role: str, what: str) -> bool:
        """Whether `what` was ever counted for `role` (result.json shows an endpoint's cost only then)."""
        return (role, what) in self._counted

    def flat(self) -> dict[str, float]:
        """ "<role>.<what>" -> amount, for what was counted, in the order first counted: result.json's compute,
        the checkpoint's counters, the snapshots a step's usage is the difference of."""
        return {f"{role}.{what}": getattr(self.roles[role], what) for role, what in self._counted}

    def add(self, flat: Mapping[str, float]) -> None:
        """Count a flat form back in (a checkpoint's counters, when resuming)."""
        for key, amount in flat.items():
            role, _, what = key.rpartition(".")
            if not role:
                raise ValueError(f"usage '{key}': expected '<role>.<what>'")
            self.count(role, what, amount)

    def __repr__(self) -> str:
        return f"Ledger({self.flat()})"

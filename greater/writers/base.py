"""The writer seam: a text method asks `writer.complete(...)` and never knows who answers.

Usage is counted into the run's ledger (greater.usage, the task model's `lm.usage`), so the budget, every
step's usage, the checkpoint and result.json's compute see it with no extra plumbing: the task model as writer
counts under the "optimizer" role as it always has; another model or an endpoint counts under "writer" (calls,
tokens_forwarded: prompt tokens, tokens_generated: completion tokens, seconds, and cost when the endpoint
reports one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

WRITER_ROLE = "writer"


class WriterError(ValueError):
    """The writer cannot answer (bad endpoint, refused key, unknown model, empty reply): one line, a fix."""


class Writer(Protocol):
    name: str  # what result.json calls it: a model name, or "<model> @ <base_url>"
    kind: str  # task_model | model | endpoint
    role: str  # the counter role its usage is counted under

    def complete(
        self, messages: list[str], max_new_tokens: int, temperature: float = 0.0, n: int = 1, seed: int | None = None
    ) -> list[list[str]]:
        """`n` replies to each user message: [message][sample]."""
        ...


def writer_usage(writer: Writer, counters: Mapping[str, float]) -> dict[str, Any]:
    """The writer's usage for result.json, read from the flat usage (compute) its role was counted under."""
    role = writer.role

    def get(what: str) -> float:
        return round(float(counters.get(f"{role}.{what}", 0)), 3)

    usage = {
        "name": writer.name,
        "kind": writer.kind,
        "role": role,
        "calls": get("calls"),
        "generations": get("generations"),
        "prompt_tokens": get("tokens_forwarded"),
        "completion_tokens": get("tokens_generated"),
        "seconds": get("seconds"),
    }
    if f"{role}.cost" in counters:
        usage["cost"] = get("cost")
    return usage

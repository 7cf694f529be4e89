"""An OpenAI-compatible chat endpoint as the writer, through the `openai` package (the `writer` extra).

The client retries connection errors, 408, 429 and 5xx with exponential back-off (`max_retries`); what is
left is one line naming the problem and the fix. A failure mid-run propagates as `WriterError`: the loop has
checkpointed every completed step, and the runner names the resume command.
"""

from __future__ import annotations

import time
from typing import Any

from greater.usage import Ledger
from greater.writers.base import WRITER_ROLE, WriterError
from greater.writers.spec import KEY, EndpointSpec


def _client(spec: EndpointSpec):
    try:
        import openai  # optional: pip install 'greater[writer]'
    except ImportError:
        raise WriterError(
            f"{KEY}: an endpoint writer needs the openai package; pip install 'greater[writer]' (or openai)"
        ) from None
    return openai, openai.OpenAI(
        base_url=spec.base_url, api_key=spec.api_key(), timeout=spec.timeout, max_retries=spec.max_retries
    )


class EndpointWriter:
    kind, role = "endpoint", WRITER_ROLE

    def __init__(self, spec: EndpointSpec, usage: Ledger) -> None:
        self.spec, self.usage = spec, usage  # the run's ledger: its work counts in the budget and result.json
        self.name = f"{spec.model} @ {spec.base_url}"
        self.openai, self.client = _client(spec)

    def count(self, what: str, amount: float = 1) -> None:
        self.usage.count(self.role, what, amount)

    def complete(self, messages, max_new_tokens, temperature=0.0, n=1, seed=None):
        cap = max_new_tokens if self.spec.max_tokens is None else min(max_new_tokens, self.spec.max_tokens)
        return [self._replies(m, cap, temperature, n, seed) for m in messages]

    def _replies(self, message: str, max_tokens: int, temperature: float, n: int, seed: int | None) -> list[str]:
        replies: list[str] = []
        while len(replies) < n:  # servers that ignore `n` answer once: ask again for the rest
            asked = n - len(replies)
            seed_now = None if seed is None else seed + len(replies)
            replies += self._request(message, max_tokens, temperature, asked, seed_now)[:asked]
        return replies

    def _request(self, message: str, max_tokens: int, temperature: float, n: int, seed: int | None) -> list[str]:
        started = time.perf_counter()
        try:
            reply = self.client.chat.completions.create(
                model=self.spec.model,
                messages=[{"role": "user", "content": message}],
                max_tokens=max_tokens,
                temperature=temperature,
                n=n,
                seed=seed,
            )
        except self.openai.APIError as err:
            raise WriterError(self._explain(err)) from None
        finally:
            self.count("seconds", time.perf_counter() - started)
        self.count("calls")
        self._count_usage(reply)
        texts = [c.message.content for c in (reply.choices or [])]
        if not texts or any(t is None for t in texts):
            raise WriterError(
                f"{KEY}: {self.name} sent a reply without content; check that model={self.spec.model} is a chat "
                "model the server serves through /v1/chat/completions"
            )
        self.count("generations", len(texts))
        return texts

    def _count_usage(self, reply: Any) -> None:
        usage = getattr(reply, "usage", None)
        if usage is None:
            return
        self.count("tokens_forwarded", usage.prompt_tokens or 0)
        self.count("tokens_generated", usage.completion_tokens or 0)
        cost = getattr(usage, "cost", None)  # reported by some gateways (OpenRouter's usage.cost)
        if cost is None and getattr(usage, "model_extra", None):
            cost = usage.model_extra.get("cost")
        if cost is not None:
            self.count("cost", float(cost))

    def _explain(self, err: Exception) -> str:
        o, s = self.openai, self.spec
        if isinstance(err, o.APITimeoutError):
            return f"{KEY}.base_url={s.base_url}: no reply within {s.timeout:g} s; raise {KEY}.timeout"
        if isinstance(err, o.APIConnectionError):
            return (
                f"{KEY}.base_url={s.base_url}: cannot connect (after {s.max_retries} retries); "
                "start the server or fix the URL"
            )
        if isinstance(err, o.AuthenticationError | o.PermissionDeniedError):
            where = f"export a valid key in {s.api_key_env}" if s.api_key_env else f"set {KEY}.api_key_env"
            return f"{KEY}: {s.base_url} refused the key ({err.status_code}); {where}"
        if isinstance(err, o.NotFoundError):
            return f"{KEY}.model={s.model}: {s.base_url} does not serve it (404); use a model name the server lists"
        status = getattr(err, "status_code", None)
        return f"{KEY}: {s.base_url} answered {status or 'an error'}: {_first_line(err)}"


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__

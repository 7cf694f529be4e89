"""`optimizer.writer` read into a typed value, torch-free, before anything loads: every mistake is one line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from greater.models.registry import model_names
from greater.writers.base import WriterError

KEY = "optimizer.writer"


@dataclass(frozen=True)
class ModelSpec:
    """One of our model configs (conf/model/<name>.yaml) writes; it runs on the task model's device."""

    name: str


@dataclass(frozen=True)
class EndpointSpec:
    """An OpenAI-compatible chat endpoint writes (/v1/chat/completions)."""

    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str  # the name the server serves
    api_key_env: str | None = None  # the environment variable holding the key; None: no key
    timeout: float = 60.0  # seconds per request
    max_retries: int = 2  # retried with exponential back-off (connection errors, 408, 429, 5xx)
    max_tokens: int | None = None  # a cap on every reply's tokens (the method's own limit when lower)

    def api_key(self) -> str:
        if self.api_key_env is None:
            return "none"  # the client insists on one; servers without auth ignore it
        key = os.environ.get(self.api_key_env)
        if not key:
            raise WriterError(
                f"{KEY}.api_key_env={self.api_key_env}: that environment variable is not set; export it "
                "with the endpoint's key, or set api_key_env=null for a server without auth"
            )
        return key


def parse_writer(value: Any) -> ModelSpec | EndpointSpec | None:
    """None (the task model), a model config name, or an endpoint mapping."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    if isinstance(value, str):
        if value not in model_names():
            raise WriterError(
                f"{KEY}={value}: no such model config; use one of {', '.join(model_names())}, "
                "or an endpoint {base_url: ..., model: ...}"
            )
        return ModelSpec(value)
    if isinstance(value, Mapping):
        return _endpoint(dict(value))
    raise WriterError(f"{KEY}={value!r}: give a model config name or an endpoint {{base_url: ..., model: ...}}")


def _endpoint(value: dict[str, Any]) -> EndpointSpec:
    known = {f.name for f in fields(EndpointSpec)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise WriterError(f"{KEY}.{unknown[0]}: not an endpoint setting; use {', '.join(sorted(known))}")
    for required in ("base_url", "model"):
        if not value.get(required):
            raise WriterError(f"{KEY}.{required} is missing: an endpoint needs base_url and model")
    url = str(value["base_url"])
    if not url.startswith(("http://", "https://")):
        raise WriterError(f"{KEY}.base_url={url}: give an http(s) URL, e.g. http://127.0.0.1:8000/v1")
    spec = EndpointSpec(**value)
    if spec.timeout <= 0 or spec.max_retries < 0 or (spec.max_tokens is not None and spec.max_tokens < 1):
        raise WriterError(f"{KEY}: set timeout > 0, max_retries >= 0 and max_tokens >= 1 (or null)")
    spec.api_key()  # an unset key fails now, not at the first call
    return spec

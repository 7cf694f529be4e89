"""The settings every method shares whose prompts a model writes (the text methods and GEPA), declared once;
a method's config extends this and may give a field another default (GEPA's `max_words`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from greater.config import Resume, hyperparameter, setting
from greater.optimizers.base import OptimizerConfig


@dataclass
class WritingConfig(OptimizerConfig):
    # proposals longer than this are rejected; the meta-prompts state the limit
    max_words: int = hyperparameter(50, min=1)
    # the model's reasoning shown to the writer, cut to this many characters
    reasoning_chars: int = hyperparameter(400, min=0)
    # who writes the instructions, critiques and feedback: null = the task model; a model config name
    # (e.g. gemma3-270m); or an endpoint {base_url, model, api_key_env, timeout, max_retries, max_tokens}
    writer: Any = setting(None, resume=Resume.steps)

"""Helpers for tests and notebooks: a tiny random model that runs in milliseconds."""

from greater.testing.tiny import tiny_language_model, tiny_tokenizer

__all__ = ["tiny_language_model", "tiny_tokenizer"]

"""How a question and the optimized prompt become the model's input: the chat format, apart from any weights.

`ChatFormat` needs only a tokenizer, so chat rendering can be tested without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass

SLOT = "\u2063PROMPT\u2063"  # marks where the optimized prompt goes inside a rendered chat
PLACEMENTS = ("after", "before", "system")


@dataclass(frozen=True)
class ChatFormat:
    """A tokenizer's chat template (or, for base models, a plain "Question: ... Answer:" frame) with the run's
    system prompt. use_chat_template is switched off by the caller when the tokenizer has no template."""

    tokenizer: object
    use_chat_template: bool = True
    system_prompt: str | None = None

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def slot(self, question: str, placement: str = "after") -> tuple[list[int], list[int]]:
        """Token ids before and after the optimized prompt, for one question.

        The chat is rendered once with a marker where the prompt goes and split there, so the prompt's
        tokens can be swapped without re-rendering (and the pieces tokenize the same every time).
        """
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown prompt placement '{placement}'; use one of {', '.join(PLACEMENTS)}")
        system, user = self.system_prompt, f"{question}\n{SLOT}"
        if placement == "before":
            user = f"{SLOT}\n{question}"
        elif placement == "system":
            system, user = SLOT, question
        before, after = self.render(system, user).split(SLOT)
        return self.encode(before), self.encode(after)

    def turn(self, user: str, system: str | None = None) -> list[int]:
        """A plain chat turn (no optimized slot) ready for generation: how optimizers ask the model things.
        system None: the run's system prompt."""
        return self.encode(self.render(system if system is not None else self.system_prompt, user))

    def render(self, system: str | None, user: str) -> str:
        if not self.use_chat_template:
            bos = self.tokenizer.bos_token or ""
            head = f"{system}\n\n" if system else ""
            return f"{bos}{head}Question: {user}\nAnswer:"
        messages = [{"role": "user", "content": user}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:
            if system is None:
                raise
            # A template that rejects a system role: the system text leads the user's turn instead.
            merged = [{"role": "user", "content": f"{system}\n\n{user}"}]
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

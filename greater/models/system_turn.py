"""model.system_turn=false: the model's own turn format with no system turn at all.

The reference hand-builds its chats with a user turn and the assistant's opening only (AM:299-422), while
some chat templates add a system block of their own when none is given (SmolLM2's persona, Llama-3.2's
knowledge and today's dates, Qwen2.5's identity). `without_system_turn` derives, from the tokenizer's
template itself, a template that renders one user turn exactly as the original renders a later user turn
(where no template adds anything), after the text the original puts before the first turn (the bos token).
A system message given anyway (model.system_prompt) is merged into the user turn, as for Gemma.
"""

from __future__ import annotations

import json

_PROBE_USER, _PROBE_REPLY, _PROBE_NEXT = "\u2063first\u2063", "\u2063reply\u2063", "\u2063next\u2063"


def _render(tokenizer, messages: list[tuple[str, str]], generation: bool) -> str:
    chat = [{"role": role, "content": content} for role, content in messages]
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=generation)


def user_turn_parts(tokenizer) -> tuple[str, str, str, str]:
    """(before the first turn, before the user text, after it, the assistant's opening), read from the
    tokenizer's template by rendering a two-turn chat and taking the second user turn apart."""
    first = [("user", _PROBE_USER), ("assistant", _PROBE_REPLY)]
    done = _render(tokenizer, first, generation=False)
    closed = _render(tokenizer, [*first, ("user", _PROBE_NEXT)], generation=False)
    opened = _render(tokenizer, [*first, ("user", _PROBE_NEXT)], generation=True)
    if not (closed.startswith(done) and opened.startswith(closed) and _PROBE_NEXT in closed[len(done) :]):
        raise ValueError(
            "model.system_turn=false: this chat template does not render turns by appending them; "
            "set model.system_turn=true or model.chat_template=false"
        )
    before_text, after_text = closed[len(done) :].split(_PROBE_NEXT)
    alone = _render(tokenizer, [("user", _PROBE_USER)], generation=False)
    bos = tokenizer.bos_token or ""
    head = bos if bos and alone.startswith(bos) and not before_text.startswith(bos) else ""
    return head, before_text, after_text, opened[len(closed) :]


def without_system_turn(tokenizer) -> str:
    """A chat template for one user turn (and an optional system message, merged into it) in the model's
    turn format, without any system block."""
    head, before, after, opening = (json.dumps(part) for part in user_turn_parts(tokenizer))
    return (
        "{% set ns = namespace(system='') %}"
        + "{{ "
        + head
        + " }}"
        + "{% for message in messages %}"
        + "{% if message['role'] == 'system' %}{% set ns.system = message['content'] + '\\n\\n' %}"
        + "{% elif message['role'] == 'user' %}{{ "
        + before
        + " + ns.system + message['content'] + "
        + after
        + " }}{% set ns.system = '' %}"
        + "{% else %}{{ raise_exception('model.system_turn=false renders user turns only') }}{% endif %}"
        + "{% endfor %}"
        + "{% if add_generation_prompt %}{{ "
        + opening
        + " }}{% endif %}"
    )

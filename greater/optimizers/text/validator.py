"""One validator for the prompts that text-based methods (APE, APO, PE2, TextGrad, OPRO) propose.

Small models misbehave as optimizers: they leave out tags, echo the meta-prompt back, answer with nothing or
with a template ("[insert the task here]"). Every proposal goes through `clean` and `check` here; a rejected
proposal is counted by reason and recorded, never raised, and `propose` asks again a bounded number of times.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Chat-template tokens a decoded reply may still carry.
_SPECIAL = re.compile(r"<\|[^|>]*\|>|<end_of_turn>|<start_of_turn>|</?s>")
# A lead-in before the actual prompt: "Sure! Here is the improved prompt:", "New instruction:".
_LEAD_IN = re.compile(
    r"^\s*(?:(?:sure|certainly|okay|ok|of course)\b[^\n:]*[.!,]\s*)?"
    r"(?:here(?:'s| is| are)\b[^\n:]*:|(?:the\s+)?(?:new|improved|revised|refined|updated|better|final)?\s*"
    r"(?:prompt|instruction|system prompt|text)s?\s*:)\s*",
    re.IGNORECASE,
)
# Bracketed or braced text, angle-bracket tags, blanks: what a template has and a usable prompt has not.
_PLACEHOLDER = re.compile(r"\[[^\]]*\]|\{[^}]*\}|<[^>\n]*>|_{3,}|\.{4,}|\b(?:insert|placeholder|todo|xxx|ins)\b", re.I)
# Words from the meta-prompts themselves; a prompt that contains them is talking about prompting.
META_WORDS = (
    "improved prompt", "new prompt", "this prompt", "the prompt", "improved_variable", "improved variable",
    "meta-prompt", "feedback", "score:", "text:", "instruction:", "prompt:", "as an ai", "language model",
    "correct answer:", "assist you", "here to help", "happy to help", "i am ready", "i'm ready",  # labels, chatter
)  # fmt: skip


@dataclass
class ProposalRules:
    """What a proposed prompt must satisfy (the same rules for every method)."""

    max_words: int = 80  # longer proposals are rejected (a prompt, not an essay)
    min_words: int = 2
    max_retries: int = 2  # extra rounds of asking when too few proposals pass
    echo_ngram: int = 6  # a run of this many words copied from the meta-prompt counts as an echo


def clean(text: str) -> str:
    """The prompt inside a reply: chat tokens, lead-ins, quotes and markdown removed, first paragraph only."""
    text = _SPECIAL.sub("", text).replace("**", "").strip()
    text = _LEAD_IN.sub("", text, count=1).strip()
    text = re.sub(r"^(?:[-*•]|#+|\d+[.)])\s+", "", text)  # a list marker or heading mark before the text
    text = re.split(r"\n\s*\n", text, maxsplit=1)[0]  # a blank line ends the prompt; what follows is commentary
    text = " ".join(text.split())
    return text.strip("\"'`“”‘’ ").strip()


def normalize(prompt: str) -> str:
    """The key under which two prompts count as duplicates (case, spacing and end punctuation ignored)."""
    return " ".join(prompt.lower().split()).rstrip(".!?: ")


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def check(
    prompt: str, rules: ProposalRules, seen: set[str], meta: str = "", quoted: tuple[str, ...] = ()
) -> str | None:
    """Why `prompt` is rejected (a short reason), or None when it may join the pool.

    `meta` is the meta-prompt the reply answered and `quoted` the prompts it showed: copying a run of words
    from the meta-prompt is an echo unless those words come from a quoted prompt."""
    words = prompt.split()
    if not words:
        return "empty"
    if len(words) < rules.min_words:
        return "too_short"
    if len(words) > rules.max_words:
        return "too_long"
    if _PLACEHOLDER.search(prompt):
        return "placeholder"
    lowered = prompt.lower()
    if any(w in lowered for w in META_WORDS):
        return "meta_words"
    if meta:
        allowed = set().union(*(_ngrams(q, rules.echo_ngram) for q in quoted)) if quoted else set()
        if (_ngrams(prompt, rules.echo_ngram) & _ngrams(meta, rules.echo_ngram)) - allowed:
            return "echo"
    if normalize(prompt) in seen:
        return "duplicate"
    return None


@dataclass
class Reply:
    """One raw reply to a meta-prompt, with what it asked (for the echo check)."""

    text: str
    meta: str = ""
    quoted: tuple[str, ...] = ()
    tag: Any = None  # the caller's bookkeeping (e.g. the parent prompt's index)


@dataclass
class Validator:
    rules: ProposalRules
    rejected: Counter = field(default_factory=Counter)  # reason -> count, over the whole run
    accepted: int = 0

    def screen(
        self,
        replies: list[Reply],
        seen: set[str],
        parse: Callable[[str], str | None] | None = None,
    ) -> tuple[list[tuple[str, Reply]], list[dict[str, str]]]:
        """Accepted (prompt, reply) pairs and rejected {raw, reason} records; accepted prompts join `seen`."""
        good: list[tuple[str, Reply]] = []
        bad: list[dict[str, str]] = []
        for reply in replies:
            parsed = parse(reply.text) if parse else reply.text
            prompt = clean(parsed) if parsed is not None else ""
            reason = "no_tags" if parsed is None else check(prompt, self.rules, seen, reply.meta, reply.quoted)
            if reason is None:
                seen.add(normalize(prompt))
                good.append((prompt, reply))
                self.accepted += 1
            else:
                self.rejected[reason] += 1
                bad.append({"raw": reply.text[:500], "reason": reason})
        return good, bad

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()),
        }

    def to_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": dict(self.rejected)}

    def load(self, data: dict[str, Any]) -> None:
        self.accepted = int(data.get("accepted", 0))
        self.rejected = Counter(data.get("rejected", {}))


def propose_each(
    validator: Validator,
    metas: list[str],
    quoted: list[tuple[str, ...]],
    ask: Callable[[list[str], int], list[str]],
    seen: set[str],
    parse: Callable[[str], str | None] | None = None,
) -> tuple[list[str | None], list[dict[str, str]]]:
    """One accepted prompt per meta-prompt, None where every try failed (never raises).

    `ask(messages, attempt)` returns one reply per message; only the meta-prompts still without an accepted
    prompt are asked again, together, up to `max_retries` more times."""
    out: list[str | None] = [None] * len(metas)
    rejected: list[dict[str, str]] = []
    pending = list(range(len(metas)))
    for attempt in range(validator.rules.max_retries + 1):
        if not pending:
            break
        replies = ask([metas[i] for i in pending], attempt)
        good, bad = validator.screen([Reply(r, metas[i], quoted[i], i) for i, r in zip(pending, replies)], seen, parse)
        for prompt, reply in good:
            out[reply.tag] = prompt
        rejected += [b | {"attempt": str(attempt)} for b in bad]
        pending = [i for i in pending if out[i] is None]
    return out, rejected


def between(text: str, start: str, end: str, lenient: bool = False) -> str | None:
    """The text between the first `start` tag and the next `end` tag. Strict: None when a tag is missing.
    Lenient (OPRO's rule): a missing start tag means from the beginning, a missing end tag to the end."""
    i = text.find(start)
    if i < 0 and not lenient:
        return None
    begin = i + len(start) if i >= 0 else 0
    j = text.find(end, begin)
    if j < 0 and not lenient:
        return None
    return text[begin : j if j >= 0 else len(text)]

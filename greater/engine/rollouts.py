"""The one scorer of prompts that every method uses, GReaTer included.

A prompt is scored on examples the way the paper scores it: the model reasons greedily with the prompt in
the task's chat (same placement and reasoning length for every method), the extractor asks for the final
answer, and an example counts as correct when greedy decoding after the extractor would emit exactly the gold
answer (the argmax equals the gold token at every answer position). Each (prompt, example) pair is rolled out
once per run: results are cached, so methods that revisit prompts pay nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from greater.engine.decode import Tail
from greater.engine.frame import Slot, answer_sequences, extractor_ids, prompt_slots
from greater.tasks.base import Example, Task

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel


@dataclass(frozen=True)
class Rollout:
    """One example reasoned with one prompt."""

    reasoning: list[int]
    loss: float  # mean cross-entropy of the gold answer tokens after the extractor
    correct: bool


@dataclass
class TextScore:
    """A prompt's score on a list of examples, for methods that work on text."""

    prompt: str
    examples: list[Example]
    rollouts: list[Rollout]
    reasonings: list[str]

    @property
    def correct(self) -> list[bool]:
        return [r.correct for r in self.rollouts]

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.rollouts) if self.rollouts else 0.0

    @property
    def loss(self) -> float:
        return sum(r.loss for r in self.rollouts) / len(self.rollouts) if self.rollouts else 0.0


@dataclass
class Scorer:
    lm: LanguageModel
    task: Task
    placement: str
    max_reasoning_tokens: int
    # Start each new rollout's greedy decoding from the reasoning of the nearest prompt already rolled out on
    # the same example, verified in one pass (same tokens as without it; see greater.engine.decode).
    # None: the model's setting (model.reuse_reasoning, off unless switched on).
    reuse_reasoning: bool | None = None
    cache: dict[tuple[tuple[int, ...], Example], Rollout] = field(default_factory=dict)
    _slots: dict[Example, Slot] = field(default_factory=dict)
    _prompts_of: dict[Example, list[tuple[int, ...]]] = field(default_factory=dict)  # rolled-out prompts, newest last

    def slots(self, examples: list[Example]) -> list[Slot]:
        missing = [ex for ex in dict.fromkeys(examples) if ex not in self._slots]
        if missing:
            self._slots.update(zip(missing, prompt_slots(self.lm, self.task, missing, self.placement)))
            with self.lm.acting_as("task"):  # every rollout, gradient and fluency pass starts with these
                self.lm.pin_prefixes([self._slots[ex].before for ex in missing])
        return [self._slots[ex] for ex in examples]

    def rollouts(self, prompts: list[list[int]], examples: list[Example]) -> list[list[Rollout]]:
        """[prompt][example] rollouts; every uncached pair is generated in one batched call."""
        self.slots(examples)
        todo: dict[tuple[int, ...], list[Example]] = {}
        for prompt in prompts:
            key = tuple(prompt)
            for ex in examples:
                if (key, ex) not in self.cache and ex not in todo.setdefault(key, []):
                    todo[key].append(ex)
        todo = {k: v for k, v in todo.items() if v}
        if todo:
            self._roll_out(todo)
        return [[self.cache[(tuple(p), ex)] for ex in examples] for p in prompts]

    def _roll_out(self, todo: dict[tuple[int, ...], list[Example]]) -> None:
        with self.lm.acting_as("task"):
            pairs = [(key, ex) for key, exs in todo.items() for ex in exs]
            inputs = [self._slots[ex].with_prompt(list(key)) for key, ex in pairs]
            reuse = self.reuse_reasoning if self.reuse_reasoning is not None else self.lm.reuse_reasoning
            drafts = [self.draft(key, ex) for key, ex in pairs] if reuse else None
            # The answer's loss is read from each rollout's own cache as its reasoning ends (one short pass over
            # extractor + answer), not from a second pass over question, prompt and reasoning.
            tails = [self._tail(ex) for _, ex in pairs]
            # A question's chat before the prompt, and the prompts' common start, go through the model once.
            shared = _common_prefix(list(todo))
            prefixes = [len(self._slots[ex].before) + shared for _, ex in pairs]
            reasonings, losses, exact = self.lm.generate_and_score(
                inputs, self.max_reasoning_tokens, drafts, tails, prefixes
            )
            self.lm.usage.count("task", "rollouts", len(pairs))
        for pair, reasoning, loss, ok in zip(pairs, reasonings, losses.tolist(), exact.tolist()):
            self._store(pair[0], pair[1], Rollout(list(reasoning), float(loss), bool(ok)))

    def _tail(self, example: Example) -> Tail:
        extractor = extractor_ids(self.lm, self.task)
        return Tail(extractor + self.lm.encode(self.task.target_text(example)), len(extractor))

    def _store(self, key: tuple[int, ...], example: Example, rollout: Rollout) -> None:
        if (key, example) not in self.cache:
            self._prompts_of.setdefault(example, []).append(key)
        self.cache[(key, example)] = rollout

    def draft(self, prompt: tuple[int, ...], example: Example, lookback: int = 32) -> list[int]:
        """The reasoning of the rolled-out prompt most like `prompt` on this example (the longest shared
        prefix plus suffix, newest first on ties): the best guess at this prompt's reasoning. Empty when no
        prompt shares at least half its tokens, since an unrelated draft costs a pass and saves little."""
        best, best_score = None, (max(len(prompt), 1) + 1) // 2 - 1
        for key in reversed(self._prompts_of.get(example, [])[-lookback:]):
            score = _shared_ends(key, prompt)
            if score > best_score:
                best, best_score = key, score
        return list(self.cache[(best, example)].reasoning) if best is not None else []

    def remember(self, prompt: list[int], examples: list[Example], reasonings: list[list[int]]) -> None:
        """Put known reasonings (e.g. from a checkpoint) into the cache, scoring them without generating."""
        self.slots(examples)
        sequences, spans = answer_sequences(self.lm, self.task, examples, self.slots(examples), prompt, reasonings)
        with self.lm.acting_as("task"):
            losses, exact = self.lm.span_losses(sequences, spans)
        for ex, reasoning, loss, ok in zip(examples, reasonings, losses.tolist(), exact.tolist()):
            self._store(tuple(prompt), ex, Rollout(list(reasoning), float(loss), bool(ok)))

    def reasonings(self, prompt: list[int], examples: list[Example]) -> list[tuple[Example, list[int]]]:
        """The reasonings already rolled out for `prompt`, on those of `examples` that have one (nothing is
        generated): what a checkpoint saves so a resumed run shows the same text as an uninterrupted one."""
        key = tuple(prompt)
        return [(ex, list(self.cache[(key, ex)].reasoning)) for ex in examples if (key, ex) in self.cache]

    def score_texts(self, prompts: list[str], examples: list[Example]) -> list[TextScore]:
        """Scores of prompts given as text (what the text-feedback baselines propose), in one batch."""
        ids = [self.lm.encode(p) for p in prompts]
        out = []
        for prompt, rollouts in zip(prompts, self.rollouts(ids, examples)):
            out.append(TextScore(prompt, list(examples), rollouts, [self.lm.decode(r.reasoning) for r in rollouts]))
        return out

    def score_text(self, prompt: str, examples: list[Example]) -> TextScore:
        return self.score_texts([prompt], examples)[0]


def _shared_ends(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Tokens shared at the start plus at the end of two prompts (each token counted once)."""
    n = min(len(a), len(b))
    head = next((i for i in range(n) if a[i] != b[i]), n)
    tail = next((i for i in range(n - head) if a[-1 - i] != b[-1 - i]), n - head)
    return head + tail


def _common_prefix(prompts: list[tuple[int, ...]]) -> int:
    """Length of the token prefix every prompt starts with."""
    first = prompts[0]
    n = min(len(p) for p in prompts)
    return next((i for i in range(n) if any(p[i] != first[i] for p in prompts)), n)

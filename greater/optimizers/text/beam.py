"""The beam-rewrite search that APO and PE2 share (as the PE2 codebase runs both); each method is only its
two meta-prompts, a critique and a rewrite.

Each round, every prompt in the beam (the best so far on the search split, any round) is run on one train
minibatch. For each child, the optimizer model sees a few of its parent's failures and first critiques the
parent (sampled), then rewrites it (screened by the validator). Children are scored on the search split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from greater.optimizers.text.pool import Node
from greater.optimizers.text.search import Outcome, TextOptimizer, TextRun
from greater.tasks.base import Example


class BeamSettings(Protocol):
    """The fields APO's and PE2's configs share."""

    n_beam: int  # prompts expanded each round
    n_expand: int  # children per beam prompt, each from its own sample of failures
    batch_size: int  # failures shown per child
    train_batch: int  # train examples each beam prompt is run on to find its failures (0: all)
    reasoning_chars: int
    max_words: int


@dataclass(frozen=True)
class Call:
    """How one optimizer-model request is sampled."""

    max_new_tokens: int
    temperature: float


@dataclass(frozen=True)
class MetaPrompts:
    """A beam-rewrite method: what it asks for a critique and for a rewrite, and how each is sampled."""

    critique: Callable[[str, str], str]  # (parent prompt, failures block) -> the critique request
    critique_call: Call
    rewrite: Callable[[str, str, str], str]  # (parent prompt, failures block, critique) -> the rewrite request
    rewrite_call: Call
    seed_tag: str  # names the critique calls' seeds (kept from before the rename, so runs sample as they did)


@dataclass
class Job:
    """One child to make: its parent and the failures shown for it."""

    parent: Node
    failures: list[tuple[Example, str]]


class BeamRewrite(TextOptimizer):
    config: Any  # a method config with the BeamSettings fields

    def meta_prompts(self, run: TextRun) -> MetaPrompts:
        raise NotImplementedError

    @property
    def settings(self) -> BeamSettings:
        return self.config

    def take_step(self, run: TextRun) -> Outcome:
        meta = self.meta_prompts(run)
        jobs, info = self.failure_jobs(run)
        blocks = [block(run, self.settings.reasoning_chars, job.failures) for job in jobs]
        asks = [meta.critique(job.parent.prompt, b) for job, b in zip(jobs, blocks)]
        call = meta.critique_call
        replies = run.proposer.ask(asks, call.max_new_tokens, call.temperature, seed=run.seeds(meta.seed_tag))
        critiques = [r[0].strip() for r in replies]
        rewrites = [meta.rewrite(job.parent.prompt, b, n) for job, b, n in zip(jobs, blocks, critiques)]
        quoted = [(job.parent.prompt,) for job in jobs]
        call = meta.rewrite_call
        prompts, rejected = run.proposer.propose(rewrites, quoted, call.max_new_tokens, call.temperature, "rewrite")
        parents = [job.parent for job in jobs]
        children = run.expand(parents, prompts, "rewrite", [{"critique": n} for n in critiques])
        return run.outcome(children, rejected, critiques=critiques, **info)

    def failure_jobs(self, run: TextRun) -> tuple[list[Job], dict[str, Any]]:
        """The beam run on one train minibatch; for each parent, `n_expand` jobs, each with its own sample of
        `batch_size` failures (a parent with none gets no jobs)."""
        s = self.settings
        parents = run.pool.beam(s.n_beam)
        batch = minibatch(run, s.train_batch)
        with self.stages("scoring"):
            results = run.ctx.scorer.score_texts([p.prompt for p in parents], batch)
        jobs, accuracy = [], []
        for parent, result in zip(parents, results):
            wrong = [(ex, r) for ex, r, ok in zip(batch, result.reasonings, result.correct) if not ok]
            accuracy.append(result.accuracy)
            for k in range(s.n_expand if wrong else 0):
                shown = run.seeds.rng("failures", parent.index, k).sample(wrong, min(s.batch_size, len(wrong)))
                jobs.append(Job(parent, shown))
        return jobs, {"parents": [p.index for p in parents], "parent_minibatch_acc": accuracy, "minibatch": len(batch)}

    def memo_prompts(self, run: TextRun) -> list[str]:
        """The next round reads the next beam's failures: keep those reasonings across a resume."""
        return [n.prompt for n in run.pool.beam(self.settings.n_beam)]


def minibatch(run: TextRun, size: int) -> list[Example]:
    """A train minibatch drawn for this step (the whole split when `size` covers it), in split order."""
    train = run.ctx.train
    if size <= 0 or size >= len(train):
        return list(train)
    chosen = set(run.seeds.rng("minibatch").sample(range(len(train)), size))
    return [ex for i, ex in enumerate(train) if i in chosen]


def describe(run: TextRun, chars: int, example: Example, reasoning: str) -> str:
    """One example as the optimizer sees it: question, the model's reasoning (cut to `chars`), the gold answer."""
    question = run.task.format_question(example).strip()
    return f"Question: {question}\nModel's reasoning: {reasoning.strip()[:chars]}\nCorrect answer: {example.answer}"


def block(run: TextRun, chars: int, pairs: list[tuple[Example, str]]) -> str:
    """Numbered examples for a meta-prompt."""
    return "\n\n".join(f"Example {i}\n{describe(run, chars, ex, r)}" for i, (ex, r) in enumerate(pairs, 1))

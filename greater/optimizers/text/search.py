"""What the text-proposing methods (APE, APO, PE2, TextGrad, OPRO) share, so each method module holds only
its own step: a pool of prompt nodes scored with the shared scorer, the optimizer model's sampled replies,
step records, checkpoints that resume to the same end, the budget check and the final pick on dev.

    class MyMethod(TextOptimizer):
        def step(self, search: Search) -> Outcome: ...   # propose, screen, score; return the step's prompt

Scores are accuracies on whole splits ("train", "dev"): the selection split is dev when the run has one,
else train. The starting prompt is node 0 and always competes in the final pick.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from greater.config import hyperparameter
from greater.optimizers.base import OptimizationContext, OptimizationResult, Optimizer, OptimizerConfig
from greater.optimizers.text.validator import ProposalRules, Validator, normalize, propose_each
from greater.records import StepRecord
from greater.tasks.base import Example, Task

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel

log = logging.getLogger(__name__)


@dataclass
class TextSearchConfig(OptimizerConfig):
    """Settings every text method has (each method's config extends this)."""

    # optimization steps (expansion rounds, updates or meta-prompt rounds)
    n_steps: int = hyperparameter(3, min=0)
    # proposals longer than this are rejected; the meta-prompts state the limit
    max_words: int = hyperparameter(50, min=1)
    max_retries: int = hyperparameter(2, min=0)  # extra rounds of asking when too few proposals pass
    # a retry samples at least this hot (a greedy retry would repeat itself)
    retry_temperature: float = hyperparameter(0.7, min=0)
    # the model's reasoning shown to the optimizer, cut to this many characters
    reasoning_chars: int = hyperparameter(400, min=0)
    # final prompt: the best this many by the method's own score (+ the start), picked on dev
    n_final: int = hyperparameter(3, min=1)


@dataclass
class Node:
    """One prompt in the pool."""

    prompt: str
    parent: int | None = None
    step: int = 0  # the step that made it (0: the start)
    origin: str = "start"
    scores: dict[str, float] = field(default_factory=dict)  # split -> accuracy on the whole split
    info: dict[str, Any] = field(default_factory=dict)  # the method's own (e.g. the feedback that made it)
    index: int = 0


@dataclass
class Job:
    """One child to make: its parent and the failures it should fix."""

    parent: Node
    failures: list[tuple[Example, str]]
    child: int = 0


@dataclass
class Outcome:
    """What a step reports: its prompt, that prompt's score on the batch it used (if any), and details."""

    chosen: Node
    details: dict[str, Any]
    train_score: float | None = None


def seed_of(*parts: Any) -> int:
    """A stable seed for one call (same on resume): a hash of the run seed, method, step and call."""
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


class Search:
    """The pool, the step counter, the history and the validator of one run, with checkpoint and resume."""

    def __init__(
        self,
        method: str,
        config: TextSearchConfig,
        lm: LanguageModel,
        task: Task,
        ctx: OptimizationContext,
        split: str | None = None,
    ):
        self.method, self.config, self.lm, self.task, self.context = method, config, lm, task, ctx
        self.validator = Validator(ProposalRules(max_words=config.max_words, max_retries=config.max_retries))
        self.nodes: list[Node] = []
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}  # the method's own JSON state (e.g. TextGrad's current prompt)
        self.split = split or ("dev" if ctx.dev else "train")  # where the search ranks prompts
        self._index = {ex: i for i, ex in enumerate(ctx.train)}
        self.stage_seconds: dict[str, float] = {}  # this step's wall time: "scoring" prompts, "optimizer" calls
        if ctx.resume_state is not None:
            self._load(ctx.resume_state)
        else:
            self.add(ctx.initial_prompt, None, "start")

    # ---- the pool -----------------------------------------------------------------------------
    def examples(self, split: str) -> list[Example]:
        return self.context.dev if split == "dev" else self.context.train

    def seen(self) -> set[str]:
        return {normalize(n.prompt) for n in self.nodes}

    def add(self, prompt: str, parent: int | None, origin: str, **info: Any) -> Node:
        node = Node(prompt, parent, self.step, origin, info=info, index=len(self.nodes))
        self.nodes.append(node)
        return node

    def score(self, nodes: list[Node], split: str | None = None) -> None:
        """Fill node.scores[split] for the nodes that lack it, in one batched scoring."""
        split = split or self.split
        todo = [n for n in nodes if split not in n.scores]
        if todo:
            with self.timed("scoring"):
                results = self.context.scorer.score_texts([n.prompt for n in todo], self.examples(split))
            for node, result in zip(todo, results):
                node.scores[split] = result.accuracy

    def ranked(self, split: str | None = None) -> list[Node]:
        """Scored nodes, best first; ties go to the older node (the start wins a tie)."""
        split = split or self.split
        return sorted((n for n in self.nodes if split in n.scores), key=lambda n: (-n.scores[split], n.index))

    def beam(self, k: int) -> list[Node]:
        return self.ranked()[:k]

    @property
    def best(self) -> Node:
        ranked = self.ranked()
        return ranked[0] if ranked else self.nodes[0]

    # ---- the optimizer model ------------------------------------------------------------------
    def ask(self, messages: list[str], max_new_tokens: int, temperature: float, n: int = 1, seed: int = 0):
        """The optimizer model's replies, [message][sample]; counted under the "optimizer" role."""
        if not messages:
            return []
        with self.lm.acting_as("optimizer"), self.timed("optimizer"):
            return self.lm.complete(messages, max_new_tokens, temperature=temperature, n=n, seed=seed)

    def propose(
        self,
        metas: list[str],
        quoted: list[tuple[str, ...]],
        max_new_tokens: int,
        temperature: float,
        tag: str,
        parse: Callable[[str], str | None] | None = None,
    ) -> tuple[list[str | None], list[dict[str, str]]]:
        """One screened prompt per meta-prompt (None where every try failed), and the rejected replies.
        A retry samples at least `retry_temperature` hot: a greedy retry would repeat itself."""

        def ask(messages: list[str], attempt: int) -> list[str]:
            hot = temperature if attempt == 0 else max(temperature, self.config.retry_temperature)
            return [r[0] for r in self.ask(messages, max_new_tokens, hot, seed=self.seed(tag, attempt))]

        return propose_each(self.validator, metas, quoted, ask, self.seen(), parse)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - started

    def seed(self, *parts: Any) -> int:
        return seed_of(self.context.seed, self.method, self.step, *parts)

    def rng(self, *parts: Any) -> random.Random:
        return random.Random(self.seed(*parts))

    def failures(self, prompts: list[str], examples: list[Example]) -> list[tuple[float, list[tuple[Example, str]]]]:
        """Per prompt (scored together): its accuracy on `examples` and the (example, reasoning) pairs it gets wrong."""
        out = []
        with self.timed("scoring"):
            results = self.context.scorer.score_texts(prompts, examples)
        for result in results:
            wrong = [(ex, r) for ex, r, ok in zip(examples, result.reasonings, result.correct) if not ok]
            out.append((result.accuracy, wrong))
        return out

    def minibatch(self, size: int, *parts: Any) -> list[Example]:
        """A train minibatch drawn for this step (the whole split when `size` covers it), in split order."""
        train = self.context.train
        if size <= 0 or size >= len(train):
            return list(train)
        chosen = set(self.rng("minibatch", *parts).sample(range(len(train)), size))
        return [ex for i, ex in enumerate(train) if i in chosen]

    def describe(self, example: Example, reasoning: str) -> str:
        """One example as the optimizer sees it: question, the model's reasoning (cut), the gold answer."""
        cut = reasoning.strip()[: self.config.reasoning_chars]
        question = self.task.format_question(example).strip()
        return f"Question: {question}\nModel's reasoning: {cut}\nCorrect answer: {example.answer}"

    def block(self, pairs: list[tuple[Example, str]]) -> str:
        """Numbered examples for a meta-prompt."""
        return "\n\n".join(f"Example {i}\n{self.describe(ex, r)}" for i, (ex, r) in enumerate(pairs, 1))

    def failure_jobs(self, n_beam: int, n_expand: int, batch_size: int, train_batch: int) -> tuple[list[Job], dict]:
        """The beam (best `n_beam` prompts so far, any step) run on one train minibatch; for each parent,
        `n_expand` jobs, each with its own sample of `batch_size` failures (a parent with none gets no jobs)."""
        parents = self.beam(n_beam)
        batch = self.minibatch(train_batch)
        jobs, accuracy = [], []
        for parent, (acc, wrong) in zip(parents, self.failures([p.prompt for p in parents], batch)):
            accuracy.append(acc)
            for k in range(n_expand if wrong else 0):
                shown = self.rng("failures", parent.index, k).sample(wrong, min(batch_size, len(wrong)))
                jobs.append(Job(parent, shown, k))
        return jobs, {"parents": [p.index for p in parents], "parent_minibatch_acc": accuracy, "minibatch": len(batch)}

    def failure_round(
        self,
        critique: Callable[[str, str], str],
        critique_call: tuple[int, float],
        rewrite: Callable[[str, str, str], str],
        rewrite_call: tuple[int, float],
        note: str,
    ) -> Outcome:
        """APO's and PE2's round: for each job, the optimizer first critiques the parent prompt on its
        failures (`critique(prompt, failures)`, sampled per `critique_call` = (max new tokens, temperature)),
        then rewrites it (`rewrite(prompt, failures, critique)`, screened); children are scored."""
        c: Any = self.config  # a config with n_beam, n_expand, batch_size, train_batch
        jobs, info = self.failure_jobs(c.n_beam, c.n_expand, c.batch_size, c.train_batch)
        blocks = [self.block(job.failures) for job in jobs]
        asks = [critique(job.parent.prompt, b) for job, b in zip(jobs, blocks)]
        notes = [r[0].strip() for r in self.ask(asks, *critique_call, seed=self.seed(note))]
        metas = [rewrite(job.parent.prompt, b, n) for job, b, n in zip(jobs, blocks, notes)]
        quoted = [(job.parent.prompt,) for job in jobs]
        prompts, rejected = self.propose(metas, quoted, *rewrite_call, tag="rewrite")
        children = self.expand(jobs, prompts, "rewrite", [{note: n} for n in notes])
        return self.beam_outcome(children, rejected, **{f"{note}s": notes}, **info)

    def expand(self, jobs: list, prompts: list[str | None], origin: str, infos: list[dict[str, Any]]) -> list[Node]:
        """New nodes for the accepted prompts, scored together on the selection split."""
        children = [
            self.add(prompt, job.parent.index, origin, **info)
            for job, prompt, info in zip(jobs, prompts, infos)
            if prompt is not None
        ]
        self.score(children)
        return children

    def beam_outcome(self, children: list[Node], rejected: list[dict[str, str]], **details: Any) -> Outcome:
        """A beam step's report: its best child (or the best so far when none passed), every candidate."""
        best_child = min(children, key=lambda n: (-n.scores[self.split], n.index)) if children else self.best
        candidates = [
            {"prompt": n.prompt, "parent": n.parent, self.split: n.scores[self.split], **n.info} for n in children
        ]
        best = self.best.scores.get(self.split, 0.0)
        summary = f"{len(children)} new, {len(rejected)} rejected, best {self.split} {best:.2f}"
        return Outcome(best_child, {"summary": summary, "candidates": candidates, "rejected": rejected, **details})

    # ---- steps, records, checkpoints ------------------------------------------------------------
    def run_step(self, optimizer: TextOptimizer) -> StepRecord:
        started, before = time.perf_counter(), dict(self.lm.counters)
        self.step += 1
        self.stage_seconds = {}
        outcome = optimizer.step(self)
        best = self.best
        chosen = outcome.chosen
        train = outcome.train_score if outcome.train_score is not None else chosen.scores.get("train")
        record = StepRecord(
            step=self.step,
            method=self.method,
            prompt=chosen.prompt,
            train_score=train,
            dev_score=chosen.scores.get("dev"),
            best_prompt=best.prompt,
            best_score=best.scores.get(self.split),
            seconds=time.perf_counter() - started,
            stage_seconds={k: round(v, 3) for k, v in self.stage_seconds.items()},
            model_calls={
                k: round(v - before.get(k, 0), 3) for k, v in self.lm.counters.items() if v != before.get(k, 0)
            },
            details=outcome.details,
        )
        self.history.append(record.to_dict())
        # Report first, then checkpoint: a kill in between replays this step on resume rather than lose it.
        self.context.callbacks.on_step_end(record)
        self.context.checkpoint(self.method, self._to_json(optimizer.memo_prompts(self)))
        return record

    def _to_json(self, memo_prompts: list[str]) -> dict[str, Any]:
        return {
            "step": self.step,
            "history": self.history,
            "nodes": [asdict(n) for n in self.nodes],
            "validator": self.validator.to_json(),
            "state": self.state,
            "memo": self._memo(memo_prompts),
        }

    def _memo(self, prompts: list[str]) -> dict[str, list[list[Any]]]:
        """The cached train reasonings of prompts the next step will read, so a resumed run shows the
        optimizer the same text an uninterrupted one would (regenerating could differ in the last bit)."""
        cache, memo = self.context.scorer.cache, {}
        for prompt in dict.fromkeys(prompts):
            key = tuple(self.lm.encode(prompt))
            rows = [[i, cache[(key, ex)].reasoning] for ex, i in self._index.items() if (key, ex) in cache]
            if rows:
                memo[prompt] = rows
        return memo

    def _load(self, data: dict[str, Any]) -> None:
        self.step, self.history, self.state = data["step"], data["history"], data.get("state", {})
        self.nodes = [Node(**n) for n in data["nodes"]]
        self.validator.load(data.get("validator", {}))
        for prompt, rows in data.get("memo", {}).items():
            examples = [self.context.train[i] for i, _ in rows]
            self.context.scorer.remember(self.lm.encode(prompt), examples, [r for _, r in rows])

    # ---- the end ------------------------------------------------------------------------------
    def final(self, candidates: list[Node]) -> tuple[Node, float | None]:
        """The best of `candidates` and the start on dev (or on train without a dev split)."""
        pool = list({n.index: n for n in [*candidates, self.nodes[0]]}.values())
        split = "dev" if self.context.dev else "train"
        self.score(pool, split)
        best = min(pool, key=lambda n: (-n.scores[split], n.index))
        return best, best.scores[split] if split == "dev" else None

    def result(self, final: Node, dev_acc: float | None, stopped: str | None, seconds: float) -> OptimizationResult:
        start = self.nodes[0]
        return OptimizationResult(
            method=self.method,
            initial_prompt=start.prompt,
            final_prompt=final.prompt,
            initial_train_acc=start.scores.get("train"),
            final_train_acc=final.scores.get("train"),
            final_dev_acc=dev_acc,
            history=[StepRecord.from_dict(h) for h in self.history],
            seconds=seconds,
            stopped_because=stopped,
            extra={
                "proposals": self.validator.summary(),
                "n_prompts": len(self.nodes),
                "search_split": self.split,  # where the search ranked prompts
                "final_split": "dev" if self.context.dev else "train",  # where the final prompt was picked
            },
        )


class TextOptimizer(Optimizer):
    """The loop every text method runs; subclasses write `step` (and may override `start` and `candidates`)."""

    config: TextSearchConfig
    search_split: str | None = None  # where the search ranks prompts; None: dev when there is one, else train
    reads_failures: bool = False  # the next step shows the beam's reasonings to the optimizer (APO, PE2)

    def optimize(self, lm: LanguageModel, task: Task, context: OptimizationContext) -> OptimizationResult:
        started = time.perf_counter()
        search = Search(self.name, self.config, lm, task, context, self.search_split)
        if context.resume_state is None:
            self.start(search)
        stopped = None
        while search.step < self.config.n_steps:
            stopped = context.budget.spent(lm)
            if stopped:
                log.info("%s: %s after %d steps", self.name, stopped, search.step)
                break
            search.run_step(self)
        final, dev_acc = search.final(self.candidates(search))
        return search.result(final, dev_acc, stopped, time.perf_counter() - started)

    def start(self, search: Search) -> None:
        """Before the first step: score the starting prompt on the selection split."""
        search.score(search.nodes[:1])

    def step(self, search: Search) -> Outcome:
        raise NotImplementedError

    def candidates(self, search: Search) -> list[Node]:
        """The prompts the final pick chooses among (the start is always added)."""
        return search.ranked()[: self.config.n_final]

    def memo_prompts(self, search: Search) -> list[str]:
        """Prompts whose train reasonings the next step reads (saved in the checkpoint): the next beam."""
        return [n.prompt for n in search.beam(getattr(self.config, "n_beam", 0))] if self.reads_failures else []

"""What the text methods (APE, APO, PE2, OPRO, TextGrad) share, on top of the shared step loop: a run made of
a pool of prompts (pool.py) and a proposer that asks the optimizer model (proposer.py), and the step record
built from what a method's step reports.

    class MyMethod(TextOptimizer):
        def take_step(self, run: TextRun) -> Outcome: ...   # propose, screen, score; return the step's prompt

Scores are accuracies on whole splits: the search split is dev when the run has one, else train. The starting
prompt is node 0 and always competes in the final pick (on dev, or by the search score without dev).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from greater.config import hyperparameter
from greater.optimizers.base import OptimizationContext, OptimizationResult
from greater.optimizers.loop import Ending, SteppedOptimizer
from greater.optimizers.text.pool import Node, Pool, Split
from greater.optimizers.text.proposer import Proposer, Seeds
from greater.optimizers.text.validator import ProposalRules
from greater.optimizers.writing import WritingConfig
from greater.records import StepRecord
from greater.tasks.base import Task
from greater.writers.base import Writer
from greater.writers.local import TaskModelWriter

if TYPE_CHECKING:
    from greater.models.language_model import LanguageModel


@dataclass
class TextSearchConfig(WritingConfig):
    """Settings every text method has (each method's config extends this)."""

    # optimization steps (expansion rounds, updates or meta-prompt rounds)
    n_steps: int = hyperparameter(3, min=0)
    max_retries: int = hyperparameter(2, min=0)  # extra rounds of asking when too few proposals pass
    # a retry samples at least this hot (a greedy retry would repeat itself)
    retry_temperature: float = hyperparameter(0.7, min=0)
    # final prompt: the best this many by the method's own score (+ the start), picked on dev
    n_final: int = hyperparameter(3, min=1)


@dataclass
class Outcome:
    """What a step reports: its prompt, that prompt's score on the batch it used (if any), and details."""

    chosen: Node
    details: dict[str, Any]
    train_score: float | None = None


@dataclass
class TextRun:
    """One text method's run: the pool, the proposer, the step being taken and the method's own JSON state."""

    lm: LanguageModel
    task: Task
    ctx: OptimizationContext
    pool: Pool
    proposer: Proposer
    state: dict[str, Any] = field(default_factory=dict)  # the method's own (e.g. TextGrad's current prompt)

    @property
    def step(self) -> int:
        return self.proposer.seeds.step

    @property
    def seeds(self) -> Seeds:
        return self.proposer.seeds

    def expand(self, parents: list[Node], prompts: list[str | None], origin: str, infos: list[dict[str, Any]]):
        """New nodes for the accepted prompts (one per parent, None where none passed), scored together on
        the search split."""
        children = [
            self.pool.add(prompt, parent.index, self.step, origin, **info)
            for parent, prompt, info in zip(parents, prompts, infos)
            if prompt is not None
        ]
        self.pool.score(children)
        return children

    def outcome(self, children: list[Node], rejected: list[dict[str, str]], **details: Any) -> Outcome:
        """A step that added children: its best child (or the best so far when none passed), every candidate."""
        split = self.pool.split
        best_child = min(children, key=lambda n: (-n.scores[split], n.index)) if children else self.pool.best
        candidates = [
            {"prompt": n.prompt, "parent": n.parent, split.value: n.scores[split], **n.info} for n in children
        ]
        best = self.pool.best.scores.get(split, 0.0)
        summary = f"{len(children)} new, {len(rejected)} rejected, best {split} {best:.2f}"
        return Outcome(best_child, {"summary": summary, "candidates": candidates, "rejected": rejected, **details})


class TextOptimizer(SteppedOptimizer[TextRun, Node]):
    """The text methods' side of the loop; a method writes `take_step` (and may override `start`,
    `candidates` and `memo_prompts`)."""

    config: TextSearchConfig
    search_split: Split | None = None  # where the search ranks prompts; None: dev when there is one, else train

    def __init__(self, config: TextSearchConfig, writer: Writer | None = None) -> None:
        super().__init__(config)
        self.writer = writer  # built from `config.writer` (greater.writers.build); None: the task model writes

    # ---- the run's state ------------------------------------------------------------------------
    def init_state(self, lm: LanguageModel, task: Task, ctx: OptimizationContext) -> TextRun:
        run = self._new_run(lm, task, ctx)
        run.pool.add(ctx.initial_prompt, None, 0, "start")
        self.start(run)
        return run

    def state_from_json(self, data: dict[str, Any], lm: LanguageModel, task: Task, ctx: OptimizationContext):
        run = self._new_run(lm, task, ctx)
        run.seeds.step, run.state = data["step"], data.get("state", {})
        run.pool.load(data["nodes"])
        run.proposer.validator.load(data.get("validator", {}))
        for prompt, rows in data.get("memo", {}).items():
            examples = [ctx.train[i] for i, _ in rows]
            ctx.scorer.remember(lm.encode(prompt), examples, [r for _, r in rows])
        return run

    def _new_run(self, lm: LanguageModel, task: Task, ctx: OptimizationContext) -> TextRun:
        c = self.config
        split = self.search_split or (Split.dev if ctx.dev else Split.train)
        pool = Pool(ctx.scorer, {Split.train: ctx.train, Split.dev: ctx.dev}, split, self.stages)
        rules = ProposalRules(max_words=c.max_words, max_retries=c.max_retries)
        writer = self.writer or TaskModelWriter(lm)
        proposer = Proposer(writer, rules, c.retry_temperature, Seeds(ctx.seed, self.name), self.stages, pool.seen)
        return TextRun(lm, task, ctx, pool, proposer)

    def state_to_json(self, run: TextRun) -> dict[str, Any]:
        return {
            "nodes": run.pool.to_json(),
            "validator": run.proposer.validator.to_json(),
            "state": run.state,
            "memo": self._memo(run, self.memo_prompts(run)),
        }

    def _memo(self, run: TextRun, prompts: list[str]) -> dict[str, list[list[Any]]]:
        """The train reasonings of prompts the next step will read, so a resumed run shows the optimizer the
        same text an uninterrupted one would (regenerating could differ in the last bit)."""
        index = {ex: i for i, ex in enumerate(run.ctx.train)}
        memo = {}
        for prompt in dict.fromkeys(prompts):
            rows = [[index[ex], r] for ex, r in run.ctx.scorer.reasonings(run.lm.encode(prompt), run.ctx.train)]
            if rows:
                memo[prompt] = rows
        return memo

    # ---- a step ---------------------------------------------------------------------------------
    def step(self, run: TextRun) -> StepRecord:
        run.seeds.step += 1
        outcome = self.take_step(run)
        pool, chosen = run.pool, outcome.chosen
        train = outcome.train_score if outcome.train_score is not None else chosen.scores.get(Split.train)
        return StepRecord(
            step=run.step,
            method=self.name,
            prompt=chosen.prompt,
            train_score=train,
            dev_score=chosen.scores.get(Split.dev),
            best_prompt=pool.best.prompt,
            best_score=pool.best.scores.get(pool.split),
            details=outcome.details,
        )

    def start(self, run: TextRun) -> None:
        """Before the first step: score the starting prompt on the search split."""
        run.pool.score([run.pool.start])

    def take_step(self, run: TextRun) -> Outcome:
        raise NotImplementedError

    def candidates(self, run: TextRun) -> list[Node]:
        """The prompts the final pick chooses among (the start is always added)."""
        return run.pool.ranked()[: self.config.n_final]

    def memo_prompts(self, run: TextRun) -> list[str]:
        """Prompts whose train reasonings the next step reads (saved in the checkpoint)."""
        return []

    # ---- the end --------------------------------------------------------------------------------
    def final_candidates(self, run: TextRun) -> list[Node]:
        """The candidates and the start. With a dev split, oldest first: dev decides and the older wins a tie;
        without one, best first by train accuracy (then the older)."""
        pool = list({n.index: n for n in [*self.candidates(run), run.pool.start]}.values())
        if run.ctx.dev:
            return sorted(pool, key=lambda n: n.index)
        run.pool.score(pool, Split.train)
        return sorted(pool, key=lambda n: (-n.scores[Split.train], n.index))

    def prompt_ids(self, run: TextRun, node: Node) -> list[int]:
        return run.lm.encode(node.prompt)

    def result(self, run: TextRun, final: Node, ending: Ending) -> OptimizationResult:
        start = run.pool.start
        return OptimizationResult(
            method=self.name,
            initial_prompt=start.prompt,
            final_prompt=final.prompt,
            initial_train_acc=start.scores.get(Split.train),
            final_train_acc=final.scores.get(Split.train),
            history=ending.history,
            seconds=ending.seconds,
            stopped_because=ending.stopped_because,
            extra={
                "proposals": run.proposer.validator.summary(),
                "n_prompts": len(run.pool.nodes),
                "search_split": run.pool.split.value,  # where the search ranked prompts
                "final_split": "dev" if run.ctx.dev else "train",  # where the final prompt was picked
            },
        )

"""GEPA's adapter over our shared scorer: a candidate is {"instruction": prompt}; evaluating it on a batch is
one `scorer.rollouts` call (counted and cached like every method's), each example scored 1.0 when greedy
decoding gives the gold after the extractor; the trace is the reasoning, that verdict and the gold, which
`make_reflective_dataset` turns into the feedback GEPA's reflection reads. A proposed instruction that fails
the shared validator (empty, a template, too long: what small writers send) scores 0 on every example without
a rollout, so GEPA's minibatch acceptance never keeps it; the starting prompt is never screened.

The adapter also owns the randomness GEPA's parent selection and minibatch sampling draw from, and the
writer's call count (its seeds): `get_adapter_state` hands them to GEPA's own state file, saved at the start
of every iteration, so a rerun continues with exactly the draws an uninterrupted run would make."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gepa.core.adapter import EvaluationBatch

from greater.optimizers.text.proposer import seed_of
from greater.optimizers.text.validator import ProposalRules, check
from greater.writers.base import WriterError

if TYPE_CHECKING:
    from gepa.strategies.batch_sampler import EpochShuffledBatchSampler

    from greater.engine.rollouts import Scorer
    from greater.models.language_model import LanguageModel
    from greater.optimizers.gepa.config import GEPAConfig
    from greater.tasks.base import Example
    from greater.writers.base import Writer

COMPONENT = "instruction"
_SAMPLER_FIELDS = (
    "shuffled_ids",
    "epoch",
    "id_freqs",
    "last_trainset_size",
    "_current_iteration",
    "_calls_in_iteration",
)


class WriterStopped(BaseException):
    """Carries a WriterError through GEPA, which catches every Exception a reflection raises, logs it and goes
    on (a dead endpoint would burn the budget in silence). Like a kill, it leaves GEPA's state file at the start
    of the iteration it stopped in; the optimizer raises the WriterError itself."""

    def __init__(self, error: WriterError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Trace:
    question: str
    reasoning: str
    gold: str
    correct: bool


class ScorerAdapter:
    propose_new_texts = None  # GEPA's own reflection proposes, with `reflect` as its model

    def __init__(self, lm: LanguageModel, scorer: Scorer, writer: Writer, config: GEPAConfig, seed: int) -> None:
        self.lm, self.scorer, self.writer, self.config, self.seed = lm, scorer, writer, config, seed
        self.rng = random.Random(seed)  # GEPA's parent selection and minibatch sampling draw from it
        self.sampler: EpochShuffledBatchSampler | None = None  # set by the optimizer; its position is saved
        self.reflections = 0  # the writer's calls so far: each call's seed
        self.rules = ProposalRules(max_words=config.max_words)
        self.start: str | None = None  # the seed candidate's text (never screened)
        self.rejected: dict[str, int] = {}  # proposals the validator refused, by reason

    # ---- GEPA's adapter interface ---------------------------------------------------------------
    def evaluate(self, batch: list[Example], candidate: dict[str, str], capture_traces: bool = False):
        prompt = candidate[COMPONENT]
        reason = None if prompt == self.start else check(prompt, self.rules, set())
        if reason is not None:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            traces = [Trace(ex.question, f"(not run: the instruction is {reason})", ex.answer, False) for ex in batch]
            return EvaluationBatch(traces, [0.0] * len(batch), traces if capture_traces else None)
        rows = self.scorer.rollouts([self.lm.encode(prompt)], list(batch))[0]
        scores = [1.0 if r.correct else 0.0 for r in rows]
        traces = [
            Trace(ex.question, self.lm.decode(r.reasoning)[: self.config.reasoning_chars], ex.answer, r.correct)
            for ex, r in zip(batch, rows)
        ]
        return EvaluationBatch(outputs=traces, scores=scores, trajectories=traces if capture_traces else None)

    def make_reflective_dataset(self, candidate, eval_batch, components_to_update) -> dict[str, list[dict[str, str]]]:
        rows = [
            {"Inputs": t.question, "Generated Outputs": t.reasoning, "Feedback": feedback(t)}
            for t in eval_batch.trajectories or []
        ]
        return {name: rows for name in components_to_update}

    def get_adapter_state(self) -> dict[str, Any]:
        sampler = {k: getattr(self.sampler, k) for k in _SAMPLER_FIELDS} if self.sampler is not None else {}
        return {
            "rng": self.rng.getstate(),
            "sampler": sampler,
            "reflections": self.reflections,
            "rejected": dict(self.rejected),
        }

    def set_adapter_state(self, state: dict[str, Any]) -> None:
        if not state:  # a fresh run
            return
        self.rng.setstate(state["rng"])
        self.reflections, self.rejected = state["reflections"], dict(state.get("rejected", {}))
        for k, v in state["sampler"].items():
            setattr(self.sampler, k, v)

    # ---- the reflection model -------------------------------------------------------------------
    def reflect(self, prompt: str | list[dict[str, Any]]) -> str:
        """GEPA's reflection call, answered by our writer with a seed of its own (the same on resume)."""
        if not isinstance(prompt, str):
            prompt = "\n\n".join(str(m.get("content", "")) for m in prompt if m.get("role") != "assistant")
        self.reflections += 1
        c = self.config
        seed = seed_of(self.seed, "gepa", "reflect", self.reflections)
        try:
            replies = self.writer.complete(
                [prompt], c.reflection_tokens, temperature=c.reflection_temperature, seed=seed
            )
        except WriterError as err:
            raise WriterStopped(err) from None
        return replies[0][0]


def feedback(trace: Trace) -> str:
    if trace.correct:
        return f"Correct: the model reached the gold answer ({trace.gold})."
    return f"Wrong: the model did not reach the gold answer. The correct answer is {trace.gold}."

"""Evaluating a prompt on held-out examples: batched reasoning, the extractor, then the answer.

Mode "generate" decodes a short greedy answer and parses it (an unparseable answer is a wrong answer);
mode "loglik" picks, for closed answer sets, the option the model finds most likely after the extractor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from greater.config import EvaluationConfig
from greater.engine.frame import extractor_ids, prompt_slots
from greater.evaluation.metrics import wilson_interval
from greater.models.language_model import LanguageModel
from greater.tasks.base import Example, Task


@dataclass
class Prediction:
    id: str
    question: str
    reasoning: str
    raw_answer: str
    parsed_answer: str | None
    gold: str
    correct: bool


@dataclass
class EvaluationResult:
    model: str
    prompt: str
    predictions: list[Prediction] = field(default_factory=list)
    seconds: float = 0.0
    predictions_file: str | None = None  # where the runner wrote the predictions, relative to the run directory

    @property
    def n(self) -> int:
        return len(self.predictions)

    @property
    def n_correct(self) -> int:
        return sum(p.correct for p in self.predictions)

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n if self.n else 0.0

    @property
    def n_unparsed(self) -> int:
        return sum(p.parsed_answer is None for p in self.predictions)

    @property
    def ci_low(self) -> float:
        return wilson_interval(self.n_correct, self.n)[0]

    @property
    def ci_high(self) -> float:
        return wilson_interval(self.n_correct, self.n)[1]

    def metrics(self, prefix: str = "test") -> dict[str, Any]:
        return {
            "model": self.model,
            f"{prefix}/acc": self.accuracy,
            f"{prefix}/acc_ci_low": self.ci_low,
            f"{prefix}/acc_ci_high": self.ci_high,
            f"{prefix}/n": self.n,
            f"{prefix}/n_unparsed": self.n_unparsed,
            f"{prefix}/seconds": self.seconds,
        }

    def write_predictions(self, path: Path) -> None:
        with Path(path).open("w", encoding="utf-8") as handle:
            for prediction in self.predictions:
                handle.write(json.dumps(asdict(prediction)) + "\n")


def evaluate_prompt(
    lm: LanguageModel,
    task: Task,
    examples: list[Example],
    prompt: str,
    cfg: EvaluationConfig,
    max_reasoning_tokens: int,
    placement: str = "after",
    answer_tokens: int | None = None,
) -> EvaluationResult:
    """The predictions of `prompt` on `examples`; `answer_tokens` is `answer_token_limit`'s, when the caller
    has it already (it reads every gold answer of the task)."""
    if cfg.mode not in ("generate", "loglik"):
        raise ValueError(f"unknown evaluation.mode '{cfg.mode}'; use generate or loglik")
    started = time.perf_counter()
    prompt_ids = lm.encode(prompt)  # the text itself, so what is reported is exactly what was evaluated
    slots = prompt_slots(lm, task, examples, placement)
    inputs = [slot.with_prompt(prompt_ids) for slot in slots]
    extractor = extractor_ids(lm, task)
    if cfg.mode == "generate":
        # The answer is decoded from each reasoning's own cache, after the extractor: the question, prompt and
        # reasoning go through the model once.
        limit = answer_tokens or answer_token_limit(lm, task, cfg.max_answer_tokens)
        reasonings, answers = lm.generate_and_answer(inputs, max_reasoning_tokens, extractor, limit)
        raws, parsed = parsed_answers(lm, task, answers)
    else:
        reasonings = lm.generate(inputs, max_reasoning_tokens)
        raws, parsed = answers_after(lm, task, [x + r + extractor for x, r in zip(inputs, reasonings)], cfg)
    predictions = predictions_of(lm, task, examples, reasonings, raws, parsed)
    return EvaluationResult(lm.name, prompt, predictions, time.perf_counter() - started)


def evaluate_in_batches(
    lm: LanguageModel,
    task: Task,
    examples: list[Example],
    prompt: str,
    cfg: EvaluationConfig,
    max_reasoning_tokens: int,
    placement: str = "after",
) -> Iterator[EvaluationResult]:
    """`evaluate_prompt`, one generation batch at a time: the batches one call would make (shortest first),
    so the predictions are the same, and the caller can keep each batch's and stop between them. The batches
    of the examples a stop left are the ones the whole call would have made of them."""
    prompt_ids = lm.encode(prompt)
    lengths = [len(slot.with_prompt(prompt_ids)) for slot in prompt_slots(lm, task, examples, placement)]
    limit = answer_token_limit(lm, task, cfg.max_answer_tokens)
    for batch in lm.generation_batches(lengths):
        chosen = [examples[i] for i in batch]
        yield evaluate_prompt(lm, task, chosen, prompt, cfg, max_reasoning_tokens, placement, limit)


def answers_after(
    lm: LanguageModel, task: Task, heads: list[list[int]], cfg: EvaluationConfig
) -> tuple[list[str], list[str | None]]:
    """(raw, parsed) answers after heads that end with the extractor, as `cfg.mode` reads them: a short greedy
    answer, parsed, or the most likely option. The dev pick reads its answers here after cached reasonings."""
    if cfg.mode == "loglik":
        options = most_likely_options(lm, task, heads)
        return options, list(options)
    return parsed_answers(lm, task, lm.generate(heads, answer_token_limit(lm, task, cfg.max_answer_tokens)))


def parsed_answers(lm: LanguageModel, task: Task, answers: list[list[int]]) -> tuple[list[str], list[str | None]]:
    """The answers' text and what the task's parser reads in it (None: nothing parses, a wrong answer)."""
    raws = [lm.decode(ids) for ids in answers]
    return raws, [task.parse(raw) for raw in raws]


def predictions_of(
    lm: LanguageModel,
    task: Task,
    examples: list[Example],
    reasonings: list[list[int]],
    raws: list[str],
    parsed: list[str | None],
) -> list[Prediction]:
    """One Prediction per example from its reasoning's ids and its raw and parsed answers, scored by the task."""
    return [
        Prediction(ex.id, ex.question, lm.decode(r), raw, p, ex.answer, task.is_correct(p, ex))
        for ex, r, raw, p in zip(examples, reasonings, raws, parsed)
    ]


def answer_token_limit(lm: LanguageModel, task: Task, floor: int) -> int:
    """How many tokens the answer may take: `floor` (evaluation.max_answer_tokens), raised to the longest
    gold answer of the task plus a few tokens of slack, so long text answers (word_sorting's sorted lists)
    are never cut short whatever the prompt. Every split's golds count: the limit says nothing about which
    answer is right."""
    golds = {task.target_text(ex) for ex in [*task.train, *task.dev, *task.test]}
    longest = max((len(lm.encode(text)) for text in golds), default=0)
    return max(floor, longest + 4)


def most_likely_options(lm: LanguageModel, task: Task, heads: list[list[int]]) -> list[str]:
    """For each head, the option with the highest total log-likelihood after the extractor.

    Total (not mean) log-likelihood: options are short and alike ("(A)".."(E)", "Yes"/"No"), and a mean
    would favour options that split into more, individually likely, tokens.
    """
    if not task.options:
        raise ValueError(
            f"evaluation.mode=loglik needs a closed answer set, and task '{task.name}' has none; "
            "use evaluation.mode=generate"
        )
    targets = [lm.encode(" " + option) for option in task.options]
    sequences = [head + target for head in heads for target in targets]
    spans = [(len(head), len(head) + len(target)) for head in heads for target in targets]
    mean_ce, _ = lm.span_losses(sequences, spans)
    lengths = [len(t) for t in targets] * len(heads)
    total = [-ce * n for ce, n in zip(mean_ce.tolist(), lengths)]
    k = len(targets)
    return [task.options[max(range(k), key=lambda j: total[i * k + j])] for i in range(len(heads))]

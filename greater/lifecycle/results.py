"""result.json: what a run found, written and read through one schema with a version.

The console and W&B receive a `RunResult` (and a `TestRow` per evaluation) and read its fields;
`scripts/collect.py` and `scripts/reproduce_tables.py` read a run through `RunResult.read`, so a field
renamed here is renamed everywhere. Every accuracy names its metric (greater.evaluation.metrics): train is
teacher-forced exact match, the optimizers' score; dev is `evaluation.dev_metric`'s (by default the test
split's: parsed answers); the test rows are the evaluator's parsed answers (or loglik options).
Fields are only ever added, so older result files read back with the defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from greater.evaluation.metrics import EXACT_MATCH, PARSED
from greater.lifecycle.rundir import RESULT_NAME, read_json, write_atomic

__all__ = ["RESULT_NAME", "RESULT_VERSION", "RunResult", "TestRow"]
RESULT_VERSION = 2


@dataclass
class TestRow:
    """One prompt evaluated on the test split with one model."""

    __test__ = False  # not a pytest class, despite the name

    model: str
    prompt_kind: str  # initial | final
    acc: float
    ci_low: float
    ci_high: float
    n: int
    n_unparsed: int
    seconds: float
    predictions_file: str | None = None  # per-example predictions, relative to the run directory
    metric: str = PARSED  # what `acc` counts: parsed (generate mode) or loglik (loglik mode)
    # generations this evaluation read from the generation cache (greater.engine.generation_cache) instead of
    # decoding; None: the cache was off or nothing was evaluated (result.json's compute covers optimization only)
    cache_hits: int | None = None


@dataclass
class RunResult:
    task: str
    model: str
    optimizer: str  # the method's name: greater, zs_cot, ape, ...
    seed: int
    initial_prompt: str
    final_prompt: str
    train: dict[str, Any]  # n, initial_acc, final_acc, metric (exact_match)
    test: list[TestRow]
    steps: int
    seconds: dict[str, float]  # load, optimization, until_evaluation (load + optimization + dev pick), total
    compute: dict[str, float] = field(default_factory=dict)  # optimization usage by role (greater.usage, flat)
    dev_acc: float | None = None  # the final prompt's dev score, by `dev_metric`
    # evaluation.dev_metric's name: parsed or loglik (as the test rows), exact_match (teacher-forced, and every
    # result.json written before the pick could parse); None without a dev split
    dev_metric: str | None = EXACT_MATCH
    stopped_because: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # who wrote the text method's instructions and its usage (greater.writers.writer_usage); None: no writer
    writer: dict[str, Any] | None = None
    # test questions that also appear in train or dev (whitespace and case aside), as the test split was
    # evaluated (None: written before this was counted), and how many task.dedupe dropped
    split_overlap: int | None = None
    dropped_overlap: int = 0
    version: int = RESULT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, run_dir: str | Path) -> Path:
        return write_atomic(Path(run_dir) / RESULT_NAME, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        if data.get("version") != RESULT_VERSION:
            raise ValueError(f"result version {data.get('version')}, expected {RESULT_VERSION}")
        fields = dict(data)
        fields["test"] = [TestRow(**row) for row in data["test"]]
        return cls(**fields)

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        path = Path(path)
        if path.is_dir():
            path = path / RESULT_NAME
        return cls.from_dict(read_json(path))

    def row(self, model: str | None = None, prompt_kind: str = "final") -> TestRow:
        """The test row of `model` (the optimizing model by default) and `prompt_kind`."""
        model = model or self.model
        return next(r for r in self.test if r.model == model and r.prompt_kind == prompt_kind)

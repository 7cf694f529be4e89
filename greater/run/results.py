"""result.json: what a run found, written and read through one schema with a version.

The console, W&B, `scripts/collect.py` and `scripts/reproduce_tables.py` all read a run through `RunResult`,
so a field renamed here is renamed everywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULT_NAME = "result.json"
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


@dataclass
class RunResult:
    task: str
    model: str
    optimizer: str  # the method's name: greater, zs_cot, ape, ...
    seed: int
    initial_prompt: str
    final_prompt: str
    train: dict[str, Any]  # n, initial_acc, final_acc
    test: list[TestRow]
    steps: int
    seconds: dict[str, float]  # optimization, until_evaluation, total
    compute: dict[str, float] = field(default_factory=dict)  # optimization counters by role (see LanguageModel)
    dev_acc: float | None = None
    stopped_because: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = RESULT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, run_dir: str | Path) -> Path:
        path = Path(run_dir) / RESULT_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

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
        return cls.from_dict(json.loads(path.read_text()))

    def row(self, model: str | None = None, prompt_kind: str = "final") -> TestRow:
        model = model or self.model
        return next(r for r in self.test if r.model == model and r.prompt_kind == prompt_kind)

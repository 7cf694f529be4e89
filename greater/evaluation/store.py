"""Where test predictions are kept, so no (model, prompt, example) is evaluated twice when it need not be.

Two layers, read together:
- this run's own files, predictions_<model>_<kind>.jsonl, which a finished run resumed with other evaluation
  settings keeps (`saved`: its result.json, when its answer settings are this config's);
- in a multirun, the sweep's shared files, <sweep dir>/evaluations/<model>_<digest>.jsonl, one per model and
  everything else that decides a prediction (task and split, seed, reasoning length, answer settings,
  prompt): most methods end on the initial prompt at this scale, and a job evaluates it only when no other
  job of the sweep has. A single run keeps the same files in <run dir>/evaluations/ while it evaluates, a
  batch at a time, so a run stopped mid-evaluation continues from them (resume=); each goes once the run's
  predictions file of its (model, prompt) is written.

`read_predictions` is the one reader of a predictions file; every file is written whole and atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from greater.evaluation.evaluator import Prediction
from greater.lifecycle.rundir import SHARED_EVALUATIONS, RunDir, read_jsonl, write_jsonl

if TYPE_CHECKING:
    from greater.lifecycle.results import RunResult
    from greater.tasks.base import Example


def read_predictions(path: str | Path) -> list[Prediction]:
    """The predictions in a predictions_*.jsonl file (none when the file is absent)."""
    return [Prediction(**row) for row in read_jsonl(path)]


def write_predictions(path: str | Path, predictions: Sequence[Prediction]) -> Path:
    return write_jsonl(path, (asdict(p) for p in predictions))


class PredictionStore:
    """This run's prediction files and the sweep's shared ones; `settings` are what, besides the model and
    the prompt, decides a prediction (the runner's `prediction_settings`)."""

    def __init__(
        self,
        run_dir: RunDir,
        settings: dict[str, Any],
        sweep_dir: Path | None = None,
        saved: RunResult | None = None,
    ) -> None:
        self.run_dir, self.settings, self.sweep_dir, self.saved = run_dir, settings, sweep_dir, saved
        self._known: dict[tuple[str, str], dict[str, Prediction]] = {}

    def known(self, model: Any, prompt: str) -> dict[str, Prediction]:
        """Example id -> prediction of `prompt` with `model` (a model config), from either layer; this
        run's own win over the sweep's."""
        key = (model.name, prompt)
        if key not in self._known:
            rows = [*read_predictions(self.shared_file(model, prompt)), *self._saved(model.name, prompt)[0]]
            self._known[key] = {p.id: p for p in rows}
        return self._known[key]

    def missing(self, model: Any, prompt: str, examples: Sequence[Example]) -> list[Example]:
        """The examples `prompt` has no prediction for with `model`, in their order."""
        known = self.known(model, prompt)
        return [ex for ex in examples if ex.id not in known]

    def saved_seconds(self, model: str, prompt: str) -> float:
        """The seconds this run spent before on the predictions it kept (0 when it kept none)."""
        return self._saved(model, prompt)[1]

    def add(self, model: Any, prompt: str, predictions: Sequence[Prediction]) -> None:
        """New predictions: known from now on, and on disk (shared with the sweep's other jobs)."""
        known = self.known(model, prompt)
        known.update((p.id, p) for p in predictions)
        write_predictions(self.shared_file(model, prompt), list(known.values()))

    def finish(self, model: Any, prompt: str) -> None:
        """The run's predictions file of (model, prompt) is written: a single run's in-progress file goes (a
        sweep's shared file stays, for its other jobs)."""
        if self.sweep_dir is not None:
            return
        path = self.shared_file(model, prompt)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # other files still in it: it stays
            path.parent.rmdir()

    def write(self, model: str, kind: str, predictions: Sequence[Prediction]) -> str:
        """This run's file of (model, kind); returns its name relative to the run directory."""
        write_predictions(self.run_dir.predictions(model, kind), predictions)
        return self.run_dir.predictions_name(model, kind)

    def shared_file(self, model: Any, prompt: str) -> Path:
        """Where the predictions of (model, prompt) are kept as they come: in the sweep directory in a
        multirun, else in the run's own."""
        key = {"model": _plain(model), **self.settings, "prompt": prompt}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        folder = self.sweep_dir if self.sweep_dir is not None else self.run_dir.path
        return folder / SHARED_EVALUATIONS / f"{model.name}_{digest}.jsonl"

    def _saved(self, model: str, prompt: str) -> tuple[list[Prediction], float]:
        """What this run saved for (model, prompt) before, with the seconds it took."""
        if self.saved is None:
            return [], 0.0
        prompts = {"initial": self.saved.initial_prompt, "final": self.saved.final_prompt}
        for row in self.saved.test:
            if row.model == model and prompts.get(row.prompt_kind) == prompt and row.predictions_file:
                path = self.run_dir.path / row.predictions_file
                if path.exists():
                    return read_predictions(path), row.seconds
        return [], 0.0


def _plain(node: Any) -> Any:
    """A config (a DictConfig or a dataclass) as plain data, enums as their names: the digest's input."""
    if not isinstance(node, DictConfig):
        node = OmegaConf.structured(node)
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)

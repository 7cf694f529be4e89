"""Weights & Biases: config, per-step prompt and losses, candidate tables, final metrics, result artifact.

Online when the user is logged in, offline otherwise (`wandb sync <dir>` uploads later). Any W&B failure
is one warning and the callback switches itself off: tracking never ends a run.
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

from greater.callbacks.base import Callback
from greater.records import StepRecord

log = logging.getLogger(__name__)


def logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: str) -> str:
    if mode == "auto":
        return os.environ.get("WANDB_MODE") or ("online" if logged_in() else "offline")
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"unknown logger.wandb_mode '{mode}'; use auto, online, offline or disabled")
    return mode


class WandbCallback(Callback):
    def __init__(
        self,
        run_dir: Path,
        project: str,
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        mode: str = "auto",
    ) -> None:
        self.run_dir, self.project, self.entity = Path(run_dir), project, entity
        self.group, self.tags, self.mode = group, list(tags or []), resolve_mode(mode)
        self.run: Any = None
        self.active = self.mode != "disabled"

    def _guard(self, action, *args) -> None:
        if not self.active:
            return
        try:
            action(*args)
        except Exception as err:  # W&B must never end a run: warn once, then stay quiet
            log.warning("Weights & Biases failed (%s: %s); the run goes on without it", type(err).__name__, err)
            self.active = False

    def on_run_start(self, run_info: dict[str, Any]) -> None:
        self._guard(self._start, run_info)

    def _start(self, run_info: dict[str, Any]) -> None:
        import wandb

        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            group=self.group or run_info.get("group"),
            name=Path(run_info["run_dir"]).name,
            tags=self.tags,
            config=run_info["config"],
            dir=str(self.run_dir),
            mode=self.mode,
            resume="allow",
            id=_run_id(self.run_dir),
        )
        if self.mode == "offline":
            log.info("W&B is offline; upload later with: wandb sync %s", self.run.dir.rsplit("/files", 1)[0])

    def on_step_end(self, record: StepRecord) -> None:
        self._guard(self._log_step, record)

    def _log_step(self, record: StepRecord) -> None:
        import wandb

        logged: dict[str, Any] = {
            "train/acc": record.train_score,
            "train/best_acc": record.best_score,
            "dev/acc": record.dev_score,
            "prompt": record.prompt,
            "seconds/step": record.seconds,
            **{f"seconds/{k}": v for k, v in record.stage_seconds.items()},
            **{f"compute/{k}": v for k, v in record.model_calls.items()},
        }
        # The method's own numbers go in as they are; lists of dicts (e.g. GReaTer's candidates) as a table.
        for key, value in record.details.items():
            if isinstance(value, (int, float, str)) and key != "summary":
                logged[f"{record.method}/{key}"] = value
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                columns = list(value[0])
                logged[f"{record.method}/{key}"] = wandb.Table(
                    columns=columns, data=[[row.get(c) for c in columns] for row in value]
                )
        self.run.log({k: v for k, v in logged.items() if v is not None}, step=record.step)

    def on_evaluation_end(self, metrics: dict[str, Any]) -> None:
        self._guard(self._log_evaluation, metrics)

    def _log_evaluation(self, metrics: dict[str, Any]) -> None:
        prefix = f"{metrics['model']}/{metrics.get('prompt_kind', 'final')}"
        self.run.summary.update({f"{prefix}/{k}": v for k, v in metrics.items() if k.startswith("test/")})

    def on_run_end(self, result: dict[str, Any]) -> None:
        self._guard(self._log_result, result)

    def _log_result(self, result: dict[str, Any]) -> None:
        import wandb

        self.run.summary["final_prompt"] = result["final_prompt"]
        self.run.summary["initial_prompt"] = result["initial_prompt"]
        artifact = wandb.Artifact(f"result-{self.run.id}", type="result")
        for name in ("result.json",):
            if (self.run_dir / name).exists():
                artifact.add_file(str(self.run_dir / name))
        with artifact.new_file("final_prompt.txt") as handle:
            handle.write(result["final_prompt"])
        self.run.log_artifact(artifact)

    def close(self) -> None:
        self._guard(self._finish)

    def _finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def _run_id(run_dir: Path) -> str:
    """A stable id per run directory, so a resumed run continues the same W&B run."""
    import hashlib

    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]

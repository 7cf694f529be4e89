"""Weights & Biases: config, per-step prompt and losses, candidate tables, final metrics, result artifact.

Online when the user is logged in, offline otherwise. When the server cannot be reached the run is recorded
offline rather than lost, and the `wandb sync` command that uploads it is printed. Any other W&B failure is
one warning and the callback switches itself off: tracking never ends a run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greater.callbacks.base import Callback
from greater.lifecycle.rundir import RESULT_NAME
from greater.net import reachable
from greater.records import RunInfo, StepRecord

if TYPE_CHECKING:
    from greater.lifecycle.results import RunResult, TestRow

log = logging.getLogger(__name__)
DEFAULT_PROJECT = "greater"
DEFAULT_SERVER = "https://api.wandb.ai"


def _wandb():
    """The wandb package, imported when a run logs to it: an optional dependency that takes seconds to load."""
    import wandb

    return wandb


def logged_in() -> bool:
    """Whether wandb has credentials (environment, settings file or netrc), asked of wandb itself, offline."""
    wandb = _wandb()
    try:
        return bool(wandb.login(prompt=False, verify=False))
    except TypeError:  # releases before `prompt=`: the key wandb would use
        return bool(wandb.api.api_key)
    except Exception:  # no credentials (some releases raise instead of returning False)
        return False


def resolve_mode(mode: str) -> str:
    if mode == "auto":
        return os.environ.get("WANDB_MODE") or ("online" if logged_in() else "offline")
    return str(mode)


def _server() -> str:
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_SERVER


def server_reachable(timeout: float = 5.0) -> bool:
    """A TCP connection to the W&B server ($WANDB_BASE_URL) opens: checked in seconds, where wandb.init
    would wait 90 s before giving up."""
    return reachable(_server(), timeout)


class WandbCallback(Callback):
    def __init__(
        self,
        run_dir: Path,
        project: str | None = None,
        entity: str | None = None,
        tags: list[str] | None = None,
        mode: str = "auto",
    ) -> None:
        self.run_dir, self.entity, self.tags = Path(run_dir), entity, list(tags or [])
        self.project = project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        self.mode = resolve_mode(mode)
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

    def on_run_start(self, run_info: RunInfo) -> None:
        self._guard(self._start, run_info)

    def _start(self, run_info: RunInfo) -> None:
        if self.mode == "online" and not server_reachable():
            log.warning("Weights & Biases: %s cannot be reached; recording this run offline", _server())
            self.mode = "offline"
        try:
            self.run = self._init(run_info, self.mode)
        except Exception as err:
            if self.mode != "online":
                raise
            log.warning("Weights & Biases did not start online (%s); recording this run offline", err)
            self.mode = "offline"
            self.run = self._init(run_info, self.mode)
        if self.mode == "offline":
            log.info("W&B is offline; upload later with: %s", self.sync_command())

    def _init(self, run_info: RunInfo, mode: str) -> Any:
        wandb = _wandb()
        return wandb.init(
            project=self.project,
            entity=self.entity,
            group=run_info.group,
            name=Path(run_info.run_dir).name,
            tags=self.tags,
            config=run_info.config,
            dir=str(self.run_dir),
            mode=mode,
            resume="allow",
            id=_run_id(self.run_dir),
        )

    def sync_command(self) -> str:
        """The command that uploads this run's offline record."""
        run_dir = str(self.run.dir).rsplit("/files", 1)[0] if self.run is not None else str(self.run_dir / "wandb")
        return f"wandb sync {run_dir}"

    def on_step_end(self, record: StepRecord) -> None:
        self._guard(self._log_step, record)

    def _log_step(self, record: StepRecord) -> None:
        wandb = _wandb()
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
        self.run.summary["train/metric"] = record.metric  # what train/acc and dev/acc count

    def on_evaluation_end(self, row: TestRow) -> None:
        self._guard(self._log_evaluation, row)

    def _log_evaluation(self, row: TestRow) -> None:
        prefix = f"{row.model}/{row.prompt_kind}/test"
        values = {
            "acc": row.acc,
            "acc_ci_low": row.ci_low,
            "acc_ci_high": row.ci_high,
            "n": row.n,
            "n_unparsed": row.n_unparsed,
            "seconds": row.seconds,
            "metric": row.metric,
        }
        self.run.summary.update({f"{prefix}/{k}": v for k, v in values.items()})

    def on_run_end(self, result: RunResult) -> None:
        self._guard(self._log_result, result)

    def _log_result(self, result: RunResult) -> None:
        wandb = _wandb()
        self.run.summary["final_prompt"] = result.final_prompt
        self.run.summary["initial_prompt"] = result.initial_prompt
        artifact = wandb.Artifact(f"result-{self.run.id}", type="result")
        if (self.run_dir / RESULT_NAME).exists():
            artifact.add_file(str(self.run_dir / RESULT_NAME))
        with artifact.new_file("final_prompt.txt") as handle:
            handle.write(result.final_prompt)
        self.run.log_artifact(artifact)

    def close(self) -> None:
        self._guard(self._finish)

    def _finish(self) -> None:
        if self.run is not None:
            sync = self.sync_command()
            self.run.finish()
            if self.mode == "offline":
                log.warning("Weights & Biases recorded this run offline; upload it with: %s", sync)
            self.run = None


def _run_id(run_dir: Path) -> str:
    """A stable id per run directory, so a resumed run continues the same W&B run."""
    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]

"""How a run was launched: the command's own overrides and whether it is one job of a multirun.

The command line builds one `Launch` from the launcher's state (greater/cli.py) and passes it to
`run(cfg, launch)`; Python callers pass `Launch()`, a single run with no overrides. The run package reads
only this value, never the launcher's globals, so it runs the same from a notebook, a test or a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Launch:
    overrides: tuple[str, ...] = ()  # the command's own `key=value` overrides (resume=<dir> merges them)
    multirun: bool = False  # one job of a multirun (-m): resume=auto by default, evaluations shared
    sweep_dir: Path | None = None  # the multirun's directory, which holds every job's directory
    search: bool = False  # the sweeper reads the jobs' return values (Optuna, ...), unlike a grid
    mode: str | None = None  # the launcher's mode name (RUN, MULTIRUN); None outside the command line

    @property
    def group(self) -> str | None:
        """Jobs of one multirun share a W&B group: the sweep directory's last two parts (its date and time)."""
        if not self.multirun or self.sweep_dir is None:
            return None
        return "_".join(self.sweep_dir.parts[-2:])  # e.g. 2026-11-24_02-27-53

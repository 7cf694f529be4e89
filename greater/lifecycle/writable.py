"""Output folders are checked before the model loads: a run that cannot write its directory should say so in
one line at once, not after minutes of loading with a bare `[Errno 2]`."""

from __future__ import annotations

import os
from pathlib import Path


class NotWritable(ValueError):
    """An output folder that cannot be created or written; the message names the setting and the fix."""


def check_writable(path: str | Path, setting: str) -> Path:
    """Create `path` if needed and write (then remove) a probe file in it; `setting` is the key that chose it
    (e.g. "hydra.run.dir", "cache_dir"), named in the error."""
    folder = Path(path).expanduser()
    probe = folder / f".greater-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        why = err.strerror or type(err).__name__
        blocker = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            why = f"{blocker} is a file, not a folder"
        raise NotWritable(
            f"{setting}={path}: cannot write there ({why}); set {setting}= to a folder you can write"
        ) from None
    return folder


def check_outputs(run_dir: str | Path, cache_dir: str | Path) -> None:
    """Everything a run writes: its directory and the cache (converted GGUF checkpoints, data sets)."""
    check_writable(run_dir, "hydra.run.dir")
    check_writable(cache_dir, "cache_dir")

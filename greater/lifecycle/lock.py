"""One live run per run directory: <run dir>/run.lock holds the holder's pid, host and start time.

Two runs writing one checkpoint.json would each overwrite the other's steps. A second run is refused while
the holder lives; a lock whose process is gone (killed with -9, the machine rebooted) is stale and taken over
with a warning. The lock file appears whole or not at all (written aside, then hard-linked into place).

Not the `filelock` package: its FileLock (flock) cannot name the holder in the refusal and is unreliable on the
network file systems cluster runs share, and its SoftFileLock never takes over the lock of a run killed with
-9. tests/test_faults.py holds the three behaviours it lacks (the holder named, a stale lock taken over,
another host's lock respected)."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

LOCK_NAME = "run.lock"
log = logging.getLogger(__name__)


class RunLocked(ValueError):
    """The run directory is held by a live run; the message names it and what to do."""


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a live holder from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False  # a garbled lock holds nothing
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process (a shared file system): it cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    started = holder.get("process_start")
    return started is None or _process_start(pid) in (None, started)


class RunLock:
    """`with RunLock(run_dir):` holds the directory for the block; `RunLocked` when a live run holds it."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.held = False

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock (None when there is no lock file; {} when it cannot be read)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        tmp = self.path.with_name(f"{LOCK_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(me))
        try:
            for _ in range(2):  # the second try follows the removal of a stale lock
                try:
                    os.link(tmp, self.path)  # fails when the lock exists: no window where two runs both win
                    self.held = True
                    return self
                except FileExistsError:
                    holder = self.holder()
                    if holder is None:
                        continue  # released between the link and the read
                    if holder and _alive(holder):
                        raise RunLocked(self._refusal(holder)) from None
                    log.warning("%s: taking over a stale lock (%s is no longer running)", self.path, _who(holder))
                    self.path.unlink(missing_ok=True)
            raise RunLocked(self._refusal(self.holder() or {}))
        finally:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        """Remove the lock if it is still this process's (never another run's)."""
        if self.held and (self.holder() or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def _refusal(self, holder: dict[str, Any]) -> str:
        return (
            f"run directory {self.run_dir} is in use by {_who(holder)}; wait for that run to end (or stop it) and "
            f"then resume={self.run_dir}, or start this run in another directory; if no such run exists, "
            f"delete {self.path}"
        )

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _who(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unreadable lock"
    return f"pid {holder.get('pid')} on {holder.get('host')} (since {holder.get('since')})"

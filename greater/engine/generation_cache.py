"""Greedy generations kept on disk across runs, so the same work is never done twice in one experiment.

Within a run the Scorer caches each (prompt, example) rollout; across runs nothing survived, so every arm of a
(task, seed) cell generated the initial prompt's reasoning on dev and test again. Here each greedy row is kept
under a key of everything that decides its tokens: the model (a hash of its weights and config, the torch and
transformers versions, the device type, the attention kernel and whether the CPU kernels are on), the exact
input token ids, the token limit, the stop ids and the row's end (the scored tail or the forced tokens and
answer length). A hit returns what the generation that wrote it returned: tokens, and the tail's loss and exact
match or the answer. Sampled generations are never kept.

Greedy rows are not bit-for-bit independent of their batch (padding changes a float sum's order; an argmax can
flip on an exact near-tie), so a hit is the tokens of the batch that first generated the row, just as the
Scorer's in-run cache keeps a rollout's first batch (see greater.engine.decode).

One SQLite file, `<cache_dir>/generations.sqlite`: jobs sharing it at once each write in their own short
transaction (write-ahead log; a busy file is waited for). Bounded: past its size cap the least recently used
rows go. A cache that cannot be read or written logs one warning and is ignored for the rest of the run.
`python -m greater.engine.generation_cache clear [cache_dir]` empties it (`info` shows its size).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from greater.config import DEFAULT_CACHE_DIR

log = logging.getLogger(__name__)

FILE = "generations.sqlite"
VERSION = 1  # of the key and value layout: a new one never reads an old one's rows


@dataclass(frozen=True)
class Generation:
    """One row's greedy result, as the engine returned it."""

    tokens: list[int]  # the continuation, stop token and anything after it dropped
    loss: float | None = None  # with a scored tail: its mean cross-entropy
    exact: bool | None = None  # with a scored tail: greedy decoding would emit exactly its tokens
    answer: list[int] | None = None  # with forced tokens: the answer decoded after them

    def dumps(self) -> str:
        return json.dumps([self.tokens, self.loss, self.exact, self.answer], separators=(",", ":"))

    @staticmethod
    def loads(text: str) -> Generation:
        tokens, loss, exact, answer = json.loads(text)
        return Generation(tokens, loss, exact, answer)


class GenerationCache:
    """Greedy rows on disk under `path`, for the model `identity` (see `model_identity`), at most about
    `max_bytes` (the least recently used rows go first)."""

    def __init__(self, path: str | Path, max_bytes: int, identity: str) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes, self.identity = max_bytes, identity
        self.failed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None
        try:
            self._db = _connect(self.path)
        except sqlite3.Error as error:  # e.g. not a database: the run goes on without the cache
            self._fail(error)

    @classmethod
    def under(cls, cache_dir: str | Path, max_mb: int, identity: str) -> GenerationCache:
        return cls(Path(cache_dir).expanduser() / FILE, int(max_mb * 2**20), identity)

    def key(self, tokens: list[int], max_new_tokens: int, stop_ids: set[int], end: object = None) -> bytes:
        """The key of one greedy row; `end` is its Tail or Answer (greater.engine.decode), or None."""
        if end is not None:
            end = sorted({"kind": type(end).__name__, **vars(end)}.items())
        text = json.dumps([VERSION, self.identity, list(tokens), max_new_tokens, sorted(stop_ids), end])
        return hashlib.sha256(text.encode()).digest()

    def get(self, keys: list[bytes]) -> dict[bytes, Generation]:
        """The rows held for `keys` (each marked as used now)."""
        wanted = list(dict.fromkeys(keys))
        if self.failed or not wanted:
            return {}
        try:
            found: dict[bytes, Generation] = {}
            for start in range(0, len(wanted), 500):  # SQLite's bound on parameters per statement
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(f"SELECT key, value FROM generations WHERE key IN ({marks})", part)
                found.update((bytes(k), Generation.loads(v)) for k, v in rows)
            if found:
                with _write(self._db):
                    now = time.time()
                    self._db.executemany("UPDATE generations SET used = ? WHERE key = ?", [(now, k) for k in found])
            return found
        except sqlite3.Error as error:
            self._fail(error)
            return {}

    def put(self, rows: Mapping[bytes, Generation]) -> None:
        """Keep `rows`, then drop the least recently used ones while the file holds more than its cap."""
        if self.failed or not rows:
            return
        now = time.time()
        values = [(k, g.dumps()) for k, g in rows.items()]
        try:
            with _write(self._db):
                self._db.executemany(
                    "INSERT OR REPLACE INTO generations (key, value, size, used) VALUES (?, ?, ?, ?)",
                    [(k, v, len(k) + len(v), now) for k, v in values],
                )
                self._evict()
        except sqlite3.Error as error:
            self._fail(error)

    def _evict(self) -> None:
        """Inside a write: past the cap, drop the oldest rows until about 80% of it is used (freed pages are
        reused by later rows, so the file stays near the cap)."""
        used = stored_bytes(self._db)
        if used <= self.max_bytes:
            return
        (count,) = self._db.execute("SELECT COUNT(*) FROM generations").fetchone()
        drop = max(1, math.ceil(count * (1 - 0.8 * self.max_bytes / used)))
        self._db.execute(
            "DELETE FROM generations WHERE key IN (SELECT key FROM generations ORDER BY used LIMIT ?)", (drop,)
        )

    def _fail(self, error: sqlite3.Error) -> None:
        self.failed = True
        log.warning(
            "generation cache %s: %s; going on without it (clear it with `python -m greater.engine.generation_cache "
            "clear`, or set generation_cache=false)",
            self.path,
            error,
        )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class _write:
    """A write transaction that takes the file's write lock at once (BEGIN IMMEDIATE): a reader that later
    wanted to write could otherwise fail as busy instead of waiting."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=120, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer; writers wait for each other
    db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last rows, never corrupt the file
    with _write(db):
        db.execute(
            "CREATE TABLE IF NOT EXISTS generations "
            "(key BLOB PRIMARY KEY, value TEXT NOT NULL, size INTEGER NOT NULL, used REAL NOT NULL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS generations_used ON generations (used)")
    return db


def stored_bytes(db: sqlite3.Connection) -> int:
    """Bytes of the file's pages in use (free pages left by deleted rows not counted)."""
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    (free,) = db.execute("PRAGMA freelist_count").fetchone()
    return (pages - free) * page_size


def clear(cache_dir: str | Path) -> int:
    """Delete every kept generation under `cache_dir` (the file shrinks too); returns how many there were."""
    path = Path(cache_dir).expanduser() / FILE
    if not path.exists():
        return 0
    try:
        db = _connect(path)
    except sqlite3.DatabaseError:  # not a database (a damaged file): delete it and its journal
        for part in (path, path.with_name(f"{FILE}-wal"), path.with_name(f"{FILE}-shm")):
            part.unlink(missing_ok=True)
        return 0
    try:
        with _write(db):
            (count,) = db.execute("SELECT COUNT(*) FROM generations").fetchone()
            db.execute("DELETE FROM generations")
        db.execute("VACUUM")
    finally:
        db.close()
    return count


def main(argv: list[str] | None = None) -> int:
    """`python -m greater.engine.generation_cache {info,clear} [cache_dir]` (default: ~/.cache/greater)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("info", "clear") or len(args) > 2:
        print("usage: python -m greater.engine.generation_cache {info,clear} [cache_dir]", file=sys.stderr)
        return 2
    cache_dir = args[1] if len(args) > 1 else DEFAULT_CACHE_DIR
    path = Path(cache_dir).expanduser() / FILE
    if args[0] == "clear":
        print(f"{path}: cleared {clear(cache_dir)} generations")
        return 0
    if not path.exists():
        print(f"{path}: no generation cache")
        return 0
    db = _connect(path)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM generations").fetchone()
        print(f"{path}: {count} generations, {stored_bytes(db) / 2**20:.1f} MB")
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ledger that makes a folder job resumable: a small SQLite file beside the output.

Each finished input's row is kept under a key made of the input's SHA-256 and the job's
*fingerprint* (model, weights hash, engine, preprocessing, top-k, groups, labels, limits). Run the
same job again after a crash, a SIGKILL or Ctrl-C, and every input whose key is already there is
skipped; change the model (or anything else in the fingerprint) and nothing matches, so everything
is recomputed. Rows are committed in small transactions (at most :data:`COMMIT_EVERY_S` apart), so
a kill loses at most that much work, which the next run simply redoes.

The current run's inputs, in order, are listed in a second table; the output file is written from
the two joined, streamed, so it never needs the job's rows in memory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from recognizer.errors import ConfigError
from recognizer.interprocess import try_lock

#: how far apart commits are at most: the work a kill can lose
COMMIT_EVERY_S = 0.5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, row TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, key TEXT, row TEXT);
"""


def fingerprint(settings: dict[str, Any]) -> str:
    """A short digest of everything that changes a row for the same bytes."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Ledger:
    """One job's ledger; one process at a time (a second one is refused, not interleaved)."""

    def __init__(self, path: Path, job_fingerprint: str) -> None:
        self.path, self.fingerprint = path, job_fingerprint
        path.parent.mkdir(parents=True, exist_ok=True)
        # flock on the database file itself: SQLite's own locks are fcntl locks, independent of it
        self._lock = _exclusive(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")
        self._last_commit = time.monotonic()
        self._seq = 0

    def start_run(self) -> None:
        """Forget the previous run's input order (its results stay: they are what resuming reuses)."""
        self._db.execute("DELETE FROM inputs")
        self._seq = 0

    def key(self, sha256: str) -> str:
        return f"{self.fingerprint}:{sha256}"

    def outcome(self, sha256: str) -> bool | None:
        """None: not done yet; True: recognised; False: done, with an error row."""
        found = self._db.execute(
            "SELECT json_extract(row, '$.error') IS NULL FROM results WHERE key = ?", (self.key(sha256),)
        ).fetchone()
        return None if found is None else bool(found[0])

    def add_input(self, name: str, sha256: str | None, row: dict[str, Any] | None = None) -> None:
        """The next input in order: by hash (its row is or will be in results), or with its own row."""
        self._seq += 1
        key = None if sha256 is None else self.key(sha256)
        text = None if row is None else json.dumps(row, separators=(",", ":"))
        self._db.execute("INSERT INTO inputs VALUES (?, ?, ?, ?)", (self._seq, name, key, text))
        self._maybe_commit()

    def add_result(self, sha256: str, row: dict[str, Any]) -> None:
        text = json.dumps(row, separators=(",", ":"))
        self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (self.key(sha256), text))
        self._maybe_commit()

    def commit(self) -> None:
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")
        self._last_commit = time.monotonic()

    def _maybe_commit(self) -> None:
        if time.monotonic() - self._last_commit >= COMMIT_EVERY_S:
            self.commit()

    def rows(self) -> Iterator[dict[str, Any]]:
        """The run's rows in input order, file name first, streamed from disk."""
        self.commit()
        cursor = self._db.execute(
            "SELECT i.name, COALESCE(i.row, r.row) FROM inputs i "
            "LEFT JOIN results r ON r.key = i.key ORDER BY i.seq"
        )
        for name, text in cursor:
            if text is None:
                raise RuntimeError(f"ledger {self.path} has no result for {name}")
            yield {"file": name} | json.loads(text)

    def close(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("COMMIT")
            self._db.close()
        finally:
            self._lock.close()


def read_rows(path: Path, *, errors_only: bool = False, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The last run's rows in input order, like :meth:`Ledger.rows`, from a read-only connection that
    takes no lock: a server streams a finished job's results, or a running job's first errors, while
    its runner may hold the ledger. Inputs whose row is not committed yet are left out."""
    row = "COALESCE(i.row, r.row)"
    sql = f"SELECT i.name, {row} FROM inputs i LEFT JOIN results r ON r.key = i.key WHERE {row} IS NOT NULL"
    if errors_only:
        sql += f" AND json_extract({row}, '$.error') IS NOT NULL"
    sql += " ORDER BY i.seq" + ("" if limit is None else f" LIMIT {int(limit)}")
    db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'inputs'").fetchone():
            return  # the runner has created the file, not yet its tables
        for name, text in db.execute(sql):
            yield {"file": name} | json.loads(text)
    finally:
        db.close()


def _exclusive(path: Path) -> IO[bytes]:
    handle = try_lock(path, create=True)
    if handle is None:
        raise ConfigError(
            f"another job is running with the ledger {path}; wait for it, or give this one its own output"
        ) from None
    return handle

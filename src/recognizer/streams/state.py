"""What must outlive a process and be shared by every process of a data folder: cooldowns, the ids
of events already sent, and the webhook outbox. One small SQLite file (``data_dir/streams.sqlite``).

SQLite in WAL mode with a busy timeout serialises writers across processes; each check-and-set is
one ``BEGIN IMMEDIATE`` transaction, so two processes seeing the same change agree on who sends it.
Commits are ``synchronous=FULL``: an event the outbox took survives a power cut, and events are
rare enough that the fsync per event costs nothing noticeable. One connection per object, shared
by its threads under a lock (and opened again in a forked child, which must not reuse it).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: claimed event ids older than this are forgotten at open (a replay after a month is new again)
CLAIM_DAYS = 30
#: delivered and refused outbox rows are kept this long (to look at), then dropped at open
OUTBOX_DAYS = 7
_DAY = 86400.0
_PENDING = "delivered_at IS NULL AND refused_at IS NULL"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS cooldowns (
    stream TEXT NOT NULL, rule TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (stream, rule)
);
CREATE TABLE IF NOT EXISTS claims (id TEXT PRIMARY KEY, claimed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS claims_age ON claims (claimed_at);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    delivered_at REAL,
    refused_at REAL,
    last_error TEXT,
    UNIQUE (id, url)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (url, seq) WHERE {_PENDING};
CREATE TABLE IF NOT EXISTS senders (url TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);
"""
_ROW = "seq, id, url, body, attempts, next_attempt_at, created_at, delivered_at, refused_at, last_error"


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    id: str
    url: str
    body: bytes
    attempts: int
    next_attempt_at: float
    created_at: float
    delivered_at: float | None
    refused_at: float | None
    last_error: str | None


class StreamState:
    def __init__(
        self, path: Path | str, *, busy_timeout_s: float = 10.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.path, self.busy_timeout_s, self.clock = Path(path), busy_timeout_s, clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._inherited: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._open()
        self._prune()

    # -- cooldowns and claims -----------------------------------------------------------------

    def allow(self, stream: str, rule: str, at: float, cooldown_s: float) -> bool:
        """The :class:`~recognizer.streams.events.CooldownStore` check, atomic across processes."""
        with self._write() as db:
            row = db.execute(
                "SELECT at FROM cooldowns WHERE stream = ? AND rule = ?", (stream, rule)
            ).fetchone()
            if row is not None and 0 <= at - row[0] < cooldown_s:
                return False
            db.execute("INSERT OR REPLACE INTO cooldowns VALUES (?, ?, ?)", (stream, rule, at))
            return True

    def claim(self, event_id: str) -> bool:
        """True the first time ``event_id`` is seen by any process on this file, False after."""
        with self._write() as db:
            cursor = db.execute("INSERT OR IGNORE INTO claims VALUES (?, ?)", (event_id, self.clock()))
            return cursor.rowcount == 1

    # -- the outbox ---------------------------------------------------------------------------

    def enqueue(self, event_id: str, url: str, body: bytes) -> bool:
        """Committed when this returns; False if this event is already queued for ``url``."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (id, url, body, created_at) VALUES (?, ?, ?, ?)",
                (event_id, url, body, self.clock()),
            )
            return cursor.rowcount == 1

    def next_pending(self, url: str) -> OutboxRow | None:
        """The oldest row still to send to ``url``: nothing behind it goes first."""
        with self._read() as db:
            row = db.execute(
                f"SELECT {_ROW} FROM outbox WHERE url = ? AND {_PENDING} ORDER BY seq LIMIT 1", (url,)
            ).fetchone()
        return None if row is None else OutboxRow(*row)

    def delivered(self, seq: int) -> None:
        self._attempted(seq, "delivered_at = ?, last_error = NULL", self.clock())

    def refused(self, seq: int, error: str) -> None:
        """The receiver will never take this row: out of the queue, kept with its reason."""
        self._attempted(seq, "refused_at = ?, last_error = ?", self.clock(), error[:500])

    def failed(self, seq: int, error: str, next_attempt_at: float) -> None:
        self._attempted(seq, "last_error = ?, next_attempt_at = ?", error[:500], next_attempt_at)

    def _attempted(self, seq: int, assignments: str, *values: object) -> None:
        with self._write() as db:
            db.execute(
                f"UPDATE outbox SET attempts = attempts + 1, {assignments} WHERE seq = ?", (*values, seq)
            )

    def pending(self, url: str | None = None) -> int:
        """Rows still to send (to ``url``, or anywhere): what a metric or a drain watches."""
        query, args = f"SELECT COUNT(*) FROM outbox WHERE {_PENDING}", ()
        if url is not None:
            query, args = query + " AND url = ?", (url,)
        with self._read() as db:
            return int(db.execute(query, args).fetchone()[0])

    def outbox(self, url: str | None = None) -> list[OutboxRow]:
        """Every row kept, oldest first (for tests and diagnostics)."""
        where, args = ("WHERE url = ?", (url,)) if url is not None else ("", ())
        with self._read() as db:
            rows = db.execute(f"SELECT {_ROW} FROM outbox {where} ORDER BY seq", args).fetchall()
        return [OutboxRow(*row) for row in rows]

    # -- who sends for a URL ------------------------------------------------------------------

    def lease(self, url: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the right to send to ``url`` for ``ttl_s``: one sender per URL across
        processes keeps the order and never posts a row twice at once. A holder that died without
        releasing is replaced once its lease runs out."""
        now = self.clock()
        with self._read() as db:
            row = db.execute("SELECT owner, until FROM senders WHERE url = ?", (url,)).fetchone()
        if row is not None and row[0] != owner and row[1] > now:
            return False  # read first: a waiting sender polls without taking the write lock
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO senders VALUES (?, ?, ?) ON CONFLICT (url) DO UPDATE SET "
                "owner = excluded.owner, until = excluded.until WHERE owner = excluded.owner OR until <= ?",
                (url, owner, now + ttl_s, now),
            )
            return cursor.rowcount == 1

    def lease_holder(self, url: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT owner FROM senders WHERE url = ?", (url,)).fetchone()
        return row[0] if row is not None else None

    def take_over(self, url: str, dead: str, owner: str, ttl_s: float) -> bool:
        """Take the lease of a holder known to be dead (a process of this host that has gone)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE senders SET owner = ?, until = ? WHERE url = ? AND owner = ?",
                (owner, self.clock() + ttl_s, url, dead),
            )
            return cursor.rowcount == 1

    def release(self, url: str, owner: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM senders WHERE url = ? AND owner = ?", (url, owner))

    # -- the connection -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @property
    def closed(self) -> bool:
        return self._db is None

    def _open(self) -> None:
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(SCHEMA)
        self._db = db

    def _prune(self) -> None:
        now = self.clock()
        with self._write() as db:
            db.execute("DELETE FROM claims WHERE claimed_at < ?", (now - CLAIM_DAYS * _DAY,))
            db.execute(
                "DELETE FROM outbox WHERE coalesce(delivered_at, refused_at) < ?", (now - OUTBOX_DAYS * _DAY,)
            )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an exception)."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid and self._db is not None:  # a forked child: its own connection
            self._inherited, self._pid = self._db, os.getpid()  # never closed here: that would
            self._open()  # drop the parent's locks
        if self._db is None:
            raise sqlite3.ProgrammingError(f"the stream state {self.path} is closed")
        return self._db

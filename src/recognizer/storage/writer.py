"""The history hook: every recognition becomes a row, written in batches off the request path.

``on_result``/``on_error`` only put the row on a bounded queue (an inline hook: cheap, never
blocking); a writer thread takes up to ``max_rows`` at a time, or what arrived within
``max_wait_s`` of the first, stores their images if asked, and inserts them in one transaction.

Nothing is lost when the database stumbles: a failed batch goes to the :class:`Spool` (a local
file, fsynced) and is replayed, with capped exponential backoff, once the database answers again;
meanwhile new batches follow it there, so memory stays flat through an outage. Without a spool
the batch is retried in memory. Rows carry a unique id and the insert skips ids already present,
so a commit whose answer was lost, retried, is written once.

Durability: ``async`` (default) answers at once and can lose, if the process is killed, the rows
still queued: at most those of the last flush interval (``max_wait_s``) plus the batch being
written. ``sync`` gives every recognition a receipt that the pipeline awaits before answering,
completed when its row is committed or spooled; the writer then commits whatever has queued
without waiting (group commit).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.dialects import postgresql, sqlite

from recognizer.inference.hooks import Hook
from recognizer.inference.results import Recognition
from recognizer.storage.images import ImageStore
from recognizer.storage.rows import row_from
from recognizer.storage.spool import Spool
from recognizer.storage.tables import recognitions

log = logging.getLogger("recognizer.history")

#: input bytes (for stored images) the queue may hold; past it rows are kept without their image
MAX_QUEUED_IMAGE_BYTES = 256 * 1024 * 1024

WriteObserver = Callable[[int, float], None]


@dataclass
class _Pending:
    recognition: Recognition
    receipt: Future[None] | None


def insert_rows(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """INSERT that skips rows whose id is already there (a retried or replayed write)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(recognitions).on_conflict_do_nothing(index_elements=["uid"])
    elif dialect == "sqlite":
        statement = sqlite.insert(recognitions).on_conflict_do_nothing(index_elements=["uid"])
    else:
        statement = insert(recognitions)
    connection.execute(statement, rows)


#: frames of a live view (the page's webcam, up to ~15 a second): what they show is live, not a
#: record; a stream's events are what history keeps of it
LIVE_SOURCES = frozenset({"webcam"})


class HistoryWriter(Hook):
    inline = True  # only enqueues

    _STOP = object()

    def __init__(
        self,
        engine: Engine,
        *,
        images: ImageStore | None = None,
        spool: Spool | None = None,
        sync: bool = False,
        max_rows: int = 500,
        max_wait_s: float = 0.05,
        max_queue: int = 100_000,
        max_backoff_s: float = 5.0,
        on_write: WriteObserver | None = None,
    ) -> None:
        self.engine, self.images, self.spool, self.sync = engine, images, spool, sync
        self.max_rows, self.max_backoff_s, self.on_write = max_rows, max_backoff_s, on_write
        self.max_wait_s = 0.0 if sync else max_wait_s  # sync callers are waiting: commit what is there
        self.wants_input_bytes = images is not None
        self.written = self.dropped = self.spooled = self.failed_attempts = self.images_skipped = 0
        self.last_write_s = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._queued_bytes = 0
        self._accepted = self._finished = 0  # rows handed in / written, spooled or dropped
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._closed = False
        self._failed_closing = False  # a write failed during shutdown: no last replay (it would wait too)
        self._backoff = 0.0
        self._retry_at: float | None = None  # set while rows wait in the spool
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # -- the hook (caller's thread) --------------------------------------------------------------

    def on_result(self, recognition: Recognition) -> None:
        self._enqueue(recognition)

    def on_error(self, recognition: Recognition) -> None:
        self._enqueue(recognition)

    def _enqueue(self, recognition: Recognition) -> None:
        if recognition.source in LIVE_SOURCES:
            return
        if recognition.data is not None and not self._reserve(len(recognition.data)):
            recognition.data = None
        receipt: Future[None] | None = Future() if self.sync else None
        with self._lock:
            self._accepted += 1
        try:
            self._queue.put_nowait(_Pending(recognition, receipt))
        except queue.Full:
            with self._lock:  # several request threads may overflow at once
                self.dropped += 1
            self._done(1)
            self._release(recognition)
            if receipt is not None:
                receipt.set_exception(RuntimeError("history queue full"))
        if receipt is not None:
            recognition.receipts.append(receipt)

    def _reserve(self, size: int) -> bool:
        with self._lock:
            if self._queued_bytes + size > MAX_QUEUED_IMAGE_BYTES:
                self.images_skipped += 1
                return False
            self._queued_bytes += size
            return True

    def _release(self, recognition: Recognition) -> None:
        if recognition.data is not None:
            with self._lock:
                self._queued_bytes -= len(recognition.data)
            recognition.data = None

    # -- the writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        if self.spool is not None and self.spool.files():  # left by an earlier run: replay first
            self._replay()
        while (batch := self._next_batch()) is not None:
            if self._retry_at is not None and time.monotonic() >= self._retry_at:
                self._replay()
            if batch:
                self._write(batch)
        if self._retry_at is not None and not self._failed_closing:  # a database back by now gets it
            self._replay()

    def _next_batch(self) -> list[_Pending] | None:
        wait = None if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())
        try:
            first = self._queue.get(timeout=wait)
        except queue.Empty:
            return []  # time to retry the spool
        if first is self._STOP:
            return None
        if self.max_wait_s and self._queue.qsize() < self.max_rows - 1:
            # Let the batch fill while asleep: one wake-up per batch, not one per row (each wake-up
            # takes the GIL from the threads serving requests). With a backlog, no wait at all.
            self._stopping.wait(self.max_wait_s)
        batch = [first]
        while len(batch) < self.max_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is self._STOP:
                self._queue.put(item)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _rows(self, batch: list[_Pending]) -> list[dict[str, Any]]:
        rows = []
        for item in batch:
            recognition, image = item.recognition, None
            if recognition.data is not None and recognition.ok and recognition.sha256 and self.images:
                try:
                    image = self.images.store(recognition.sha256, recognition.data)
                except Exception as exc:  # unreadable for a thumbnail, disk full: keep the row
                    log.warning("history: image of %s not stored (%s)", recognition.name, exc)
            self._release(recognition)
            rows.append(row_from(recognition, image))
        return rows

    def _write(self, batch: list[_Pending]) -> None:
        rows = self._rows(batch)
        if self._retry_at is None and self._insert(rows):
            return self._settle(batch)
        while not self._spool_rows(rows):  # no spool, or it failed too: retry in memory
            if self._stopping.is_set():
                self.dropped += len(rows)
                log.error("history: %d rows not written at shutdown", len(rows))
                return self._settle(batch, RuntimeError("history database unavailable at shutdown"))
            self._stopping.wait(self._next_backoff())
            if self._insert(rows):
                return self._settle(batch)
        self._settle(batch)

    def _insert(self, rows: list[dict[str, Any]]) -> bool:
        start = time.perf_counter()
        try:
            with self.engine.begin() as connection:
                insert_rows(connection, rows)
        except Exception as exc:  # locked, restarting, unreachable
            self.failed_attempts += 1
            self._failed_closing = self._failed_closing or self._closed
            log.warning("history: writing %d rows failed (%s)", len(rows), _short(exc))
            return False
        self.last_write_s = time.perf_counter() - start
        self.written += len(rows)
        self._backoff = 0.0
        if self.on_write is not None:
            self.on_write(len(rows), self.last_write_s)
        return True

    def _spool_rows(self, rows: list[dict[str, Any]]) -> bool:
        if self.spool is None:
            return False
        try:
            self.spool.append(rows)
        except OSError as exc:
            log.error("history: spooling %d rows failed (%s)", len(rows), exc)
            return False
        self.spooled += len(rows)
        if self._retry_at is None:
            self._retry_at = time.monotonic() + self._next_backoff()
        return True

    def _replay(self) -> None:
        assert self.spool is not None
        try:
            count = self.spool.replay(self._insert_or_raise)
        except Exception:
            self._retry_at = time.monotonic() + self._next_backoff()
            return
        self._retry_at = None
        if count:
            log.info("history: database back; %d spooled rows written", count)

    def _insert_or_raise(self, rows: list[dict[str, Any]]) -> None:
        if not self._insert(rows):
            raise ConnectionError("history database still unavailable")

    def _next_backoff(self) -> float:
        self._backoff = min(max(0.05, self._backoff * 2), self.max_backoff_s)
        return self._backoff

    def _done(self, count: int) -> None:
        with self._lock:
            self._finished += count

    def _settle(self, batch: list[_Pending], error: Exception | None = None) -> None:
        self._done(len(batch))
        for item in batch:
            if item.receipt is not None and not item.receipt.done():
                if error is None:
                    item.receipt.set_result(None)
                else:
                    item.receipt.set_exception(error)

    # -- shutdown ----------------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row queued before this call is written or spooled; False on timeout."""
        target, deadline = self._accepted, time.monotonic() + timeout
        while self._finished < target:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued (waiting up to ``timeout``), then stop the writer. Rows the
        database will not take by then are spooled, where there is a spool: only without one
        are they lost (and counted)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(self._STOP, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()  # from here a failing write spools or gives up instead of retrying
        self._thread.join(15.0)
        if self._thread.is_alive() or self.pending:
            log.error("history: %d rows not written at shutdown", self.pending)
            self.dropped += self.pending


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__

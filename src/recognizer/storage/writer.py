"""The history hook: every recognition becomes a row, written in batches off the request path.

``emit`` only puts a row on a bounded queue (an inline hook: cheap, never blocking); a writer
thread takes up to ``max_rows`` at a time, or what arrived within ``max_wait_s`` of the first, and
inserts them in one transaction. A failed write is retried with capped exponential backoff, the
batch kept meanwhile, so a database that is locked, slow or restarting delays rows but loses none
(up to the queue's bound: past it, rows are dropped and counted). ``close`` writes what is queued.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from typing import Any

from sqlalchemy import Engine

from recognizer.inference.hooks import Hook
from recognizer.inference.results import Recognition
from recognizer.storage.rows import row_from
from recognizer.storage.tables import recognitions

log = logging.getLogger("recognizer.history")


class HistoryWriter(Hook):
    inline = True  # only enqueues

    _STOP = object()

    def __init__(
        self,
        engine: Engine,
        max_rows: int = 500,
        max_wait_s: float = 0.05,
        max_queue: int = 100_000,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.engine, self.max_rows, self.max_wait_s, self.max_backoff_s = (
            engine,
            max_rows,
            max_wait_s,
            max_backoff_s,
        )
        self.written = self.dropped = self.failed_attempts = 0
        self.last_write_s = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def on_result(self, recognition: Recognition) -> None:
        self._enqueue(row_from(recognition))

    def on_error(self, recognition: Recognition) -> None:
        self._enqueue(row_from(recognition))

    def _enqueue(self, row: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch:
                self._write(batch)

    def _next_batch(self) -> list[dict[str, Any]] | None:
        first = self._queue.get()
        if first is self._STOP:
            return None
        batch, deadline = [first], time.monotonic() + self.max_wait_s
        while len(batch) < self.max_rows:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is self._STOP:
                self._queue.put(item)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _write(self, batch: list[dict[str, Any]]) -> None:
        delay = 0.05
        while True:
            start = time.perf_counter()
            try:
                with self.engine.begin() as connection:
                    connection.execute(recognitions.insert(), batch)
            except Exception as exc:  # locked, restarting, unreachable: keep the batch and retry
                self.failed_attempts += 1
                if self._stopping.is_set():  # shutdown ran out of time: count what is lost
                    self.dropped += len(batch)
                    log.error("history: %d rows not written at shutdown (%s)", len(batch), exc)
                    return
                log.warning("history: writing %d rows failed (%s); retry in %.2f s", len(batch), exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.last_write_s = time.perf_counter() - start
            self.written += len(batch)
            return

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued (waiting up to ``timeout``), then stop the writer."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(self._STOP, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()  # from here a failing write gives up instead of retrying
        self._thread.join(15.0)
        if self._thread.is_alive() or self.pending:
            log.error("history: %d rows not written at shutdown", self.pending)
            self.dropped += self.pending

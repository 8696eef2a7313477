"""The history hook: every emitted recognition is one row; a locked database delays rows, loses none,
and never blocks the caller."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select

from recognizer.errors import EmptyImageError
from recognizer.inference.results import Prediction, Recognition
from recognizer.storage import migrate
from recognizer.storage.tables import recognitions
from recognizer.storage.writer import HistoryWriter


def _recognition(i: int) -> Recognition:
    result = Recognition("api", f"{i}.jpg", "m", "onnxruntime", size_bytes=i)
    if i % 10 == 0:
        result.error = EmptyImageError("empty")
    else:
        result.predictions = [Prediction(i % 1000, "n00000000", "x", 0.5)]
    return result


def _emit(writer: HistoryWriter, count: int) -> None:
    for i in range(count):
        recognition = _recognition(i)
        (writer.on_error if recognition.error else writer.on_result)(recognition)


def _rows(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(recognitions)).scalar_one()


@pytest.fixture
def sqlite_engine(sqlite_engine):
    migrate.upgrade(sqlite_engine)
    return sqlite_engine


@pytest.fixture
def engine(engine):
    migrate.upgrade(engine)
    return engine


def test_every_recognition_becomes_one_row_in_batches(engine):
    writer = HistoryWriter(engine, max_rows=100)
    _emit(writer, 1_000)
    writer.close()
    assert _rows(engine) == writer.written == 1_000 and writer.dropped == 0
    with engine.connect() as connection:
        errors = connection.execute(
            select(func.count()).where(recognitions.c.error_code == "empty_image")
        ).scalar()
    assert errors == 100


def test_a_locked_database_delays_rows_without_blocking_the_caller_or_losing_any(sqlite_engine, tmp_path):
    locker = sqlite3.connect(tmp_path / "data" / "recognizer.db", timeout=0, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    writer = HistoryWriter(sqlite_engine, max_rows=50)
    start = time.perf_counter()
    _emit(writer, 200)
    assert time.perf_counter() - start < 2  # enqueuing only; a blocked insert would wait its 10-s timeout
    time.sleep(0.5)
    assert writer.written == 0  # still locked out
    threading.Timer(0.5, locker.rollback).start()  # the lock goes away after a while
    writer.close(timeout=60)
    locker.close()
    assert _rows(sqlite_engine) == 200 and writer.dropped == 0


def test_a_full_queue_drops_and_counts_instead_of_growing(sqlite_engine, tmp_path):
    locker = sqlite3.connect(tmp_path / "data" / "recognizer.db", timeout=0, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    writer = HistoryWriter(sqlite_engine, max_rows=10, max_queue=20)
    _emit(writer, 100)
    assert writer.dropped >= 60
    locker.rollback()
    locker.close()
    writer.close(timeout=60)
    assert _rows(sqlite_engine) + writer.dropped == 100

"""The history hook: every emitted recognition is one row; a locked database delays rows, loses none,
and never blocks the caller."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import threading
import time

import pytest
from PIL import Image
from sqlalchemy import func, select

from recognizer.errors import EmptyImageError
from recognizer.inference.results import Prediction, Recognition
from recognizer.storage import database, migrate
from recognizer.storage.images import ImageStore
from recognizer.storage.rows import row_from
from recognizer.storage.spool import Spool
from recognizer.storage.tables import recognitions
from recognizer.storage.writer import HistoryWriter, insert_rows
from tests.helpers import jpeg_bytes


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


# -- outages: the spool ------------------------------------------------------------------------------


def _uids(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(recognitions.c.uid)))


def test_rows_written_while_the_database_is_away_are_spooled_then_replayed(tmp_path):
    engine = database.make_engine(f"sqlite:///{tmp_path / 'h.db'}")  # no schema yet: every insert fails
    writer = HistoryWriter(engine, spool=Spool(tmp_path / "spool"), max_rows=50, max_backoff_s=0.2)
    _emit(writer, 300)
    assert writer.flush(10)
    assert writer.spooled == 300 and writer.written == 0 and list((tmp_path / "spool").iterdir())
    migrate.upgrade(engine)  # the database is back
    deadline = time.monotonic() + 10
    while writer.written < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.close()
    assert _rows(engine) == 300 and len(set(_uids(engine))) == 300 and writer.dropped == 0
    assert not list((tmp_path / "spool").glob("*.jsonl"))  # replayed files are gone


def test_a_dead_process_spool_is_replayed_once_and_duplicates_are_skipped(sqlite_engine, tmp_path):
    recognitions_ = [_recognition(i) for i in range(1, 21)]
    rows = [row_from(r) for r in recognitions_]
    spool_dir = tmp_path / "spool"
    Spool(spool_dir).append(rows)  # as if written by this process...
    (spool_dir / f"spool-{os.getpid()}.jsonl").rename(spool_dir / "spool-999999999.jsonl")  # ...one now dead
    with sqlite_engine.begin() as connection:  # half of them had been committed before the crash
        insert_rows(connection, rows[:10])
    writer = HistoryWriter(sqlite_engine, spool=Spool(spool_dir))
    writer.close()
    assert sorted(_uids(sqlite_engine)) == sorted(r.id for r in recognitions_)
    assert not list(spool_dir.glob("*.jsonl"))


def test_a_torn_last_line_is_skipped(tmp_path, sqlite_engine):
    spool = Spool(tmp_path / "spool")
    spool.append([row_from(_recognition(1))])
    with spool.path.open("a") as handle:
        handle.write('{"uid": "half')  # killed mid-write: that row was never acknowledged
    assert spool.replay(lambda rows: _insert(sqlite_engine, rows)) == 1


def _insert(engine, rows):
    with engine.begin() as connection:
        insert_rows(connection, rows)


# -- sync durability --------------------------------------------------------------------------------


def test_sync_durability_completes_a_receipt_only_once_the_row_is_committed(sqlite_engine, tmp_path):
    locker = sqlite3.connect(tmp_path / "data" / "recognizer.db", timeout=0, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    writer = HistoryWriter(sqlite_engine, sync=True)
    recognition = _recognition(1)
    writer.on_result(recognition)
    [receipt] = recognition.receipts
    time.sleep(0.3)
    assert not receipt.done()  # still locked out: the caller must not answer yet
    locker.rollback()
    locker.close()
    receipt.result(timeout=15)
    assert _uids(sqlite_engine) == [recognition.id]
    writer.close()


# -- stored pixels -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["thumbnail", "full"])
def test_images_are_stored_once_per_content_and_only_for_recognised_inputs(sqlite_engine, tmp_path, mode):
    store = ImageStore(tmp_path / "images", mode)
    writer = HistoryWriter(sqlite_engine, images=store)
    data = jpeg_bytes(Image.new("RGB", (640, 480), (200, 30, 30)))
    sha = hashlib.sha256(data).hexdigest()
    for i in range(3):  # the same photo three times, and a rejected input
        recognition = _recognition(i + 1)
        recognition.data, recognition.sha256 = data, sha
        writer.on_result(recognition)
    rejected = _recognition(10)
    rejected.data, rejected.sha256 = b"%PDF-1.4", "0" * 64
    writer.on_error(rejected)
    writer.close()
    files = [p for p in (tmp_path / "images").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [sha + (".jpg" if mode == "thumbnail" else ".img")]
    stored = files[0].read_bytes()
    if mode == "full":
        assert stored == data
    else:
        with Image.open(io.BytesIO(stored)) as image:
            assert image.format == "JPEG" and max(image.size) == 256
    with sqlite_engine.connect() as connection:
        kinds = sorted(str(k) for k in connection.scalars(select(recognitions.c.image)))
    assert kinds == ["None", mode, mode, mode]


def test_claiming_a_dead_process_spool_never_overwrites_one_left_under_this_pid(tmp_path, sqlite_engine):
    spool_dir = tmp_path / "spool"
    mine, dead = Spool(spool_dir), [row_from(_recognition(3))]
    mine.append([row_from(_recognition(1)), row_from(_recognition(2))])
    mine.path.rename(spool_dir / f"spool-{os.getpid()}-1.jsonl")  # left by an earlier process, same pid
    Spool(spool_dir).append(dead)
    (spool_dir / f"spool-{os.getpid()}.jsonl").rename(spool_dir / "spool-999999998.jsonl")
    assert Spool(spool_dir).replay(lambda rows: _insert(sqlite_engine, rows)) == 3
    assert _rows(sqlite_engine) == 3 and not list(spool_dir.iterdir())

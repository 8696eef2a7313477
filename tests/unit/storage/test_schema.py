"""The history schema: migrations up and down on SQLite and on the local PostgreSQL, no drift
between the declared tables and the migrations, rows that round-trip, a stale schema refused."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from recognizer.errors import ConfigError, NotAnImageError
from recognizer.inference.results import GroupScore, Prediction, Recognition
from recognizer.storage import database, migrate
from recognizer.storage.rows import row_from
from recognizer.storage.tables import metadata, recognitions


def _recognition() -> Recognition:
    return Recognition(
        "api",
        "cat.jpg",
        "efficientnet_lite0",
        "onnxruntime",
        predictions=[
            Prediction(282, "n02123159", "tiger cat", 0.33),
            Prediction(281, "n02123045", "tabby", 0.28),
        ],
        groups=[GroupScore("cat", 0.92)],
        sha256="4f" * 32,
        width=451,
        height=300,
        size_bytes=19_000,
        timing_ms={"decode": 3.1, "infer": 12.5, "total": 16.0},
        client="127.0.0.1",
    )


def test_migrations_go_up_and_down(engine):
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head() and "recognitions" in inspect(engine).get_table_names()
    migrate.downgrade(engine, "base")
    assert migrate.current(engine) is None and "recognitions" not in inspect(engine).get_table_names()


def test_the_migrations_match_the_declared_tables(engine):
    """What `alembic check` does: autogenerate finds nothing to add, drop or alter."""
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_a_recognition_and_a_rejection_round_trip(engine):
    migrate.upgrade(engine)
    rejected = Recognition("batch", "report.jpg", "efficientnet_lite0", "onnxruntime", size_bytes=9)
    rejected.error = NotAnImageError("the data is not an image")
    with engine.begin() as connection:
        connection.execute(recognitions.insert(), [row_from(_recognition()), row_from(rejected)])
    with engine.connect() as connection:
        good, bad = connection.execute(select(recognitions).order_by(recognitions.c.id)).mappings().all()
    assert (good["top_label"], good["top_index"], good["client"], good["width"]) == (
        "tiger cat",
        282,
        "127.0.0.1",
        451,
    )
    assert good["predictions"][1]["label"] == "tabby" and good["groups"] == [{"name": "cat", "score": 0.92}]
    assert good["total_ms"] == 16.0 and good["created_at"] is not None
    assert (bad["error_code"], bad["top_label"], bad["source"]) == ("not_an_image", None, "batch")


def test_a_stale_schema_is_refused_naming_the_command(sqlite_engine):
    with pytest.raises(ConfigError, match="recognizer db upgrade"):
        migrate.require_current(sqlite_engine)
    migrate.upgrade(sqlite_engine)
    migrate.require_current(sqlite_engine)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_engine):
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == database.BUSY_TIMEOUT_MS


def test_a_bad_url_is_one_clear_error():
    with pytest.raises(ConfigError, match="not a database URL"):
        database.make_engine("not a url")

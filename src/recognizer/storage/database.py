"""Connections: the URL from settings, SQLite tuned for several writers, the schema check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from recognizer.errors import ConfigError

#: how long a SQLite writer waits for another one's lock before failing, in milliseconds
BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> Engine:
    """An Engine for ``url``; a SQLite file gets its folder, WAL mode and a busy timeout."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy's ArgumentError: not a URL it can read
        raise ConfigError(f"RECOGNIZER_DATABASE_URL {url!r} is not a database URL ({exc})") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor it them
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint; safe with WAL
    cursor.close()

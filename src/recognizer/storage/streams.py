"""The ``streams`` and ``stream_events`` tables: what the server watches, and what it saw.

Each function is one short transaction; callers on the event loop run them on a thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from recognizer.storage.tables import stream_events, streams


def add(engine: Engine, row: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(streams).values(**row, created_at=datetime.now(UTC)))


def all_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [
            dict(row._mapping) for row in connection.execute(select(streams).order_by(streams.c.created_at))
        ]


def remove(engine: Engine, name: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(streams).where(streams.c.name == name))


def record_event(engine: Engine, event: dict[str, Any]) -> bool:
    """Insert one event; False when its id is there already (a copy, from a restart or a worker)."""
    try:
        with engine.begin() as connection:
            connection.execute(insert(stream_events).values(**event, created_at=datetime.now(UTC)))
    except IntegrityError:
        return False
    return True


def events(engine: Engine, stream: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first."""
    query = select(stream_events).order_by(stream_events.c.at.desc()).limit(limit)
    if stream is not None:
        query = query.where(stream_events.c.stream == stream)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]

"""The ``jobs`` table: folder jobs submitted over HTTP, their state and counts.

The table is the queue. A worker claims the oldest job it can run with one conditional UPDATE, so
two workers (or a restarted server and a slow one) never both start the same job; the job's lock
file (see :mod:`recognizer.jobs.service`) says whether a ``running`` row still has a live runner.
Every function here is a short transaction; callers on the event loop run them on a thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from recognizer.storage.tables import jobs as t

#: states a job may be in; a cancelled job's row is deleted
WAITING, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ACTIVE = (WAITING, RUNNING)


def now() -> datetime:
    return datetime.now(UTC)


def add(engine: Engine, job: dict[str, Any]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(t).values(**job))


def get(engine: Engine, job_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.id == job_id)).mappings().first()
    return _aware(dict(row)) if row is not None else None


def newest(engine: Engine, limit: int, state: str | None = None) -> list[dict[str, Any]]:
    """Jobs, newest first (optionally in one state)."""
    query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(t.c.state == state)
    with engine.connect() as connection:
        return [_aware(dict(row)) for row in connection.execute(query).mappings()]


def waiting(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(t.c.state == WAITING)).scalar_one()


def active_ids(engine: Engine) -> list[str]:
    """Jobs not finished, oldest first: the order they are run in."""
    query = select(t.c.id).where(t.c.state.in_(ACTIVE)).order_by(t.c.created_at, t.c.id)
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(t.c.id)).scalars())


def claim(engine: Engine, job_id: str) -> bool:
    """Mark an unfinished job running, now; False if it finished or went meanwhile."""
    query = (
        update(t)
        .where(t.c.id == job_id, t.c.state.in_(ACTIVE))
        .values(state=RUNNING, started_at=now(), finished_at=None, message=None)
    )
    with engine.begin() as connection:
        return connection.execute(query).rowcount == 1


def progress(engine: Engine, job_id: str, counts: dict[str, int], rate: float | None) -> bool:
    """Record a running job's counts; False if its row is gone (the job was deleted)."""
    query = update(t).where(t.c.id == job_id).values(**counts, rate=rate)
    with engine.begin() as connection:
        return connection.execute(query).rowcount == 1


def finish(
    engine: Engine,
    job_id: str,
    state: str,
    message: str | None,
    counts: dict[str, int],
    rate: float | None,
) -> None:
    """Record how a job ended, with its final counts."""
    values = {"state": state, "finished_at": now(), "message": message, "rate": rate, **counts}
    query = update(t).where(t.c.id == job_id).values(**values)
    with engine.begin() as connection:
        connection.execute(query)


def remove(engine: Engine, job_id: str) -> bool:
    with engine.begin() as connection:
        return connection.execute(delete(t).where(t.c.id == job_id)).rowcount == 1


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite hands back naive datetimes (stored as UTC)."""
    for key in ("created_at", "started_at", "finished_at"):
        if row[key] is not None and row[key].tzinfo is None:
            row[key] = row[key].replace(tzinfo=UTC)
    return row

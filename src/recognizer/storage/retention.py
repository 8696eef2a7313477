"""Deleting history: by age and row cap in the background, and on request (by id, time, client).

Deletes go in small batches, each its own short transaction, so a sweep over millions of rows
never holds a lock long enough to stall the writer. A stored image is deleted with the last row
that refers to it (images are shared between rows of the same photo).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, delete, func, select

from recognizer.storage.images import ImageStore
from recognizer.storage.tables import recognitions as t

log = logging.getLogger("recognizer.history")

#: rows per DELETE transaction
DELETE_BATCH = 1000
#: how often the background sweep runs, in seconds
SWEEP_INTERVAL_S = 60.0


def delete_where(engine: Engine, condition: ColumnElement[bool], images: ImageStore) -> int:
    """Delete every row matching ``condition``, in batches, with images no row needs any more."""
    total = 0
    while True:
        with engine.begin() as connection:
            found = connection.execute(
                select(t.c.id, t.c.sha256, t.c.image).where(condition).order_by(t.c.id).limit(DELETE_BATCH)
            ).all()
            if not found:
                return total
            connection.execute(delete(t).where(t.c.id.in_([row.id for row in found])))
        total += len(found)
        _delete_orphaned_images(engine, {row.sha256 for row in found if row.image}, images)


def prune(engine: Engine, images: ImageStore, days: float | None, max_rows: int | None) -> int:
    """Apply the retention settings once; returns the rows deleted."""
    deleted = 0
    if days is not None:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        deleted += delete_where(engine, t.c.created_at < cutoff, images)
    if max_rows is not None:
        deleted += _cap(engine, images, max_rows)
    return deleted


def _cap(engine: Engine, images: ImageStore, max_rows: int) -> int:
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(t)) or 0
        if count <= max_rows:
            return 0
        # The newest row to delete: everything at or before it goes (oldest first).
        boundary = connection.execute(
            select(t.c.created_at, t.c.id)
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .offset(max_rows)
            .limit(1)
        ).one()
    older = t.c.created_at < boundary.created_at
    same_time = and_(t.c.created_at == boundary.created_at, t.c.id <= boundary.id)
    return delete_where(engine, older | same_time, images)


def _delete_orphaned_images(engine: Engine, hashes: set[str], images: ImageStore) -> None:
    if not hashes:
        return
    with engine.connect() as connection:
        still_used = set(
            connection.scalars(
                select(t.c.sha256).where(t.c.sha256.in_(hashes), t.c.image.is_not(None)).distinct()
            )
        )
    for sha256 in hashes - still_used:
        images.delete(sha256)


class Retention:
    """The background sweep: ``prune`` now, then every ``interval`` seconds, until stopped."""

    def __init__(
        self,
        engine: Engine,
        images: ImageStore,
        days: float | None,
        max_rows: int | None,
        interval: float = SWEEP_INTERVAL_S,
    ) -> None:
        self.engine, self.images, self.days, self.max_rows, self.interval = (
            engine,
            images,
            days,
            max_rows,
            interval,
        )
        self.deleted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-retention", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.deleted += prune(self.engine, self.images, self.days, self.max_rows)
            except Exception as exc:  # the database is away: the next sweep catches up
                log.warning("history retention sweep failed (%s); next in %.0f s", exc, self.interval)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10.0)

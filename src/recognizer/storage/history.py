"""The history store, assembled from settings: database, schema check, writer, images, retention.

``open_history`` is what the server and ``recognizer predict --record`` call; ``prepare_schema``
is the start-up rule: a new, empty database is created; an older schema is migrated only when
asked (``--migrate``), else refused with the command that fixes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, inspect

from recognizer.config import Settings
from recognizer.storage import database, migrate
from recognizer.storage.images import ImageStore
from recognizer.storage.retention import Retention
from recognizer.storage.spool import Spool
from recognizer.storage.writer import HistoryWriter, WriteObserver

log = logging.getLogger("recognizer.history")


def prepare_schema(engine: Engine, allow_migrate: bool = False) -> None:
    """Create a new database, migrate an older one if allowed, else insist on the current schema."""
    found, wanted = migrate.current(engine), migrate.head()
    if found == wanted:
        return
    fresh = found is None and not inspect(engine).get_table_names()
    if fresh or allow_migrate:
        url = engine.url.render_as_string(hide_password=True)
        log.info("history: %s schema %s -> %s", url, found or "none", wanted)
        try:
            migrate.upgrade(engine)
        except Exception:
            if migrate.current(engine) != wanted:  # not just another worker doing it first
                raise
        return
    migrate.require_current(engine)


class History:
    """What a process keeps open for recognition history."""

    def __init__(
        self, settings: Settings, on_write: WriteObserver | None = None, engine: Engine | None = None
    ) -> None:
        options = settings.history
        self._owns_engine = engine is None
        self.engine = engine or database.make_engine(settings.history_database)
        if self._owns_engine:
            prepare_schema(self.engine, options.migrate)
        data_dir = settings.data_dir.expanduser()
        self.images = ImageStore(data_dir / "images", options.images)
        self.writer = HistoryWriter(
            self.engine,
            images=self.images if options.images != "none" else None,
            spool=Spool(data_dir / "spool"),
            sync=options.durability == "sync",
            on_write=on_write,
        )
        self.retention = (
            Retention(self.engine, self.images, options.days, options.max_rows)
            if options.days is not None or options.max_rows is not None
            else None
        )

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Stop retention, write what is queued, release connections."""
        if self.retention is not None:
            self.retention.stop()
        self.writer.close()
        if self._owns_engine:
            self.engine.dispose()


def open_database(settings: Settings) -> Engine | None:
    """The database of history, API keys and users, its schema checked (see ``prepare_schema``).
    None when history is off and no database exists yet: then there are no keys or users either,
    and nothing is created."""
    url = settings.history_database
    sqlite_file = Path(url.removeprefix("sqlite:///")).expanduser() if url.startswith("sqlite:///") else None
    if settings.history.mode == "off" and sqlite_file is not None and not sqlite_file.exists():
        return None
    engine = database.make_engine(url)
    prepare_schema(engine, settings.history.migrate)
    return engine

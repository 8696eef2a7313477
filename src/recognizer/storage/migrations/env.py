"""Alembic environment: the Engine comes from recognizer.storage.migrate (no alembic.ini, no URL here)."""

from __future__ import annotations

from alembic import context

from recognizer.storage.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()

"""Alembic, driven from code: ``recognizer db upgrade`` and the server's schema check use this."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from recognizer.errors import ConfigError


def _config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("recognizer.storage") / "migrations"))
    config.attributes["engine"] = engine
    return config


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or "base"


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(_config(engine), revision)


def require_current(engine: Engine) -> None:
    """Refuse to run on a schema older (or newer) than this code, naming the command that fixes it."""
    found, wanted = current(engine), head()
    if found != wanted:
        url = engine.url.render_as_string(hide_password=True)
        raise ConfigError(
            f"the history database {url} is at schema revision {found or 'none'}, this version needs "
            f"{wanted}; run `recognizer db upgrade` (or start the server with --migrate)"
        )

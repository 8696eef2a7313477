"""``recognizer db upgrade|current``: the history database's schema."""

from __future__ import annotations

import click

from recognizer.cli.common import exit_on_error, make_settings


@click.group("db")
def command() -> None:
    """Create or migrate the history database (RECOGNIZER_DATABASE_URL, default SQLite in the data dir)."""


@command.command("upgrade")
@click.option("--url", help="Database URL (default: RECOGNIZER_DATABASE_URL, else SQLite in the data dir).")
def upgrade(url: str | None) -> None:
    """Bring the schema to this version's revision (creates the database file if needed)."""
    from recognizer.storage import database, migrate

    with exit_on_error():
        engine = database.make_engine(url or make_settings().history_database)
        migrate.upgrade(engine)
        click.echo(
            f"{engine.url.render_as_string(hide_password=True)}: schema at revision {migrate.current(engine)}"
        )


@command.command("current")
@click.option("--url", help="Database URL (default: RECOGNIZER_DATABASE_URL, else SQLite in the data dir).")
def current(url: str | None) -> None:
    """Print the schema revision, and exit 1 if it is not the one this version needs."""
    from recognizer.storage import database, migrate

    with exit_on_error():
        engine = database.make_engine(url or make_settings().history_database)
        found, wanted = migrate.current(engine), migrate.head()
    click.echo(f"revision {found or 'none'} (this version needs {wanted})")
    raise SystemExit(0 if found == wanted else 1)

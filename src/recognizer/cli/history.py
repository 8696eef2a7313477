"""``recognizer history export|prune``: the history database from the command line."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import click

from recognizer.cli.common import exit_on_error, fail, make_settings


@click.group("history")
def command() -> None:
    """Export or prune recognition history (RECOGNIZER_DATABASE_URL, default SQLite in the data dir)."""


@command.command("export")
@click.option("--format", "format_", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv")
@click.option("--out", "-o", type=click.Path(path_type=Path), help="File to write (default: stdout).")
@click.option("--since", type=click.DateTime(), help="From this time (UTC), e.g. 2026-11-01.")
@click.option("--until", type=click.DateTime(), help="Before this time (UTC).")
@click.option("--label", help="Top-1 label (substring) or wnid.")
@click.option("--model", help="Only this model's rows.")
@click.option("--source", help="web, api, batch, compat, v2, cli, job, stream:NAME.")
@click.option("--errors/--no-errors", default=None, help="Only rejected inputs / only recognised ones.")
def export_(
    format_: str,
    out: Path | None,
    since: datetime | None,
    until: datetime | None,
    label: str | None,
    model: str | None,
    source: str | None,
    errors: bool | None,
) -> None:
    """Write matching rows, oldest first, in the same schema as GET /v1/history/export."""
    from recognizer.storage import database, export, queries
    from recognizer.storage.history import prepare_schema

    filters = queries.Filters(
        label=label, model=model, source=source, since=since, until=until, errors=errors
    )
    with exit_on_error():
        export.require_format(format_)
        engine = database.make_engine(make_settings().history_database)
        prepare_schema(engine)
        chunks = export.encode(queries.rows_for_export(engine, filters), format_)
        if out is None:
            if format_ == "parquet" and sys.stdout.isatty():
                fail("Parquet is binary: give --out FILE, or redirect stdout")
            _write(chunks, sys.stdout.buffer)
            return
        partial = out.with_name(f".{out.name}.partial")
        with partial.open("wb") as handle:
            _write(chunks, handle)
        partial.replace(out)  # never a half-written file under the real name
    click.echo(f"recognizer: history written to {out}", err=True)


def _write(chunks: object, handle: BinaryIO) -> None:
    for chunk in chunks:  # type: ignore[attr-defined]
        handle.write(chunk)
    handle.flush()


@command.command("prune")
@click.option("--days", type=float, help="Delete rows older than this (default: RECOGNIZER_HISTORY_DAYS).")
@click.option(
    "--max-rows", type=int, help="Keep only the newest N rows (default: RECOGNIZER_HISTORY_MAX_ROWS)."
)
def prune(days: float | None, max_rows: int | None) -> None:
    """Apply retention once, now (the server also does it in the background)."""
    from recognizer.storage import database, retention
    from recognizer.storage.history import prepare_schema
    from recognizer.storage.images import ImageStore

    settings = make_settings()
    days = days if days is not None else settings.history.days
    max_rows = max_rows if max_rows is not None else settings.history.max_rows
    if days is None and max_rows is None:
        fail("nothing to prune by: give --days or --max-rows (or set RECOGNIZER_HISTORY_DAYS)")
    with exit_on_error():
        engine = database.make_engine(settings.history_database)
        prepare_schema(engine)
        images = ImageStore(settings.data_dir.expanduser() / "images", settings.history.images)
        deleted = retention.prune(engine, images, days, max_rows)
    click.echo(f"recognizer: {deleted} row(s) deleted")

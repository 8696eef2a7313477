"""``recognizer weights fetch|import|path``: put weights where every command finds them."""

from __future__ import annotations

from pathlib import Path

import click

from recognizer.cli.common import exit_on_error, make_settings
from recognizer.models import get_model_spec
from recognizer.models import weights as weights_store


@click.group("weights")
def command() -> None:
    """Fetch or import weights into the torch hub cache, where every command finds them."""


@command.command("fetch")
@click.argument("name")
def weights_fetch(name: str) -> None:
    """Download NAME's published weights (needs internet) and verify their hash."""
    settings = make_settings()
    with exit_on_error():
        resolved = weights_store.fetch_weights(get_model_spec(name), settings.hub_checkpoints)
    click.echo(f"{name}: {resolved.path} (sha256 {resolved.sha256[:16]}…)")


@command.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
def weights_import(name: str, file: Path) -> None:
    """Verify FILE against NAME's published hash and copy it into the cache."""
    settings = make_settings()
    with exit_on_error():
        resolved = weights_store.import_weights(get_model_spec(name), file, settings.hub_checkpoints)
    click.echo(f"{name}: imported to {resolved.path}")


@command.command("path")
@click.argument("name")
def weights_path(name: str) -> None:
    """Print the verified weights file NAME would use, or fail saying how to get one."""
    settings = make_settings()
    with exit_on_error():
        resolved = weights_store.resolve_weights(get_model_spec(name), settings.hub_checkpoints)
    click.echo(str(resolved.path))

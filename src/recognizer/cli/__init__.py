"""The ``recognizer`` command: one module per command group, registered here."""

from __future__ import annotations

import click

from recognizer.cli import access, batch, db, export, history, models, predict, serve, watch, weights


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recognizer")
def main() -> None:
    """Recognize objects in photos with ImageNet-1K classifiers, offline."""


for _module in (predict, batch, watch, serve, export, models, weights, db, history):
    main.add_command(_module.command)
main.add_command(access.keys_command)
main.add_command(access.users_command)

__all__ = ["main"]

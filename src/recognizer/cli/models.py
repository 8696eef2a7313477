"""``recognizer models``: the registry, and what is available offline right now."""

from __future__ import annotations

import json

import click

from recognizer.cli.common import make_settings
from recognizer.models import list_model_specs
from recognizer.models import weights as weights_store


@click.command("models")
@click.option("--json", "as_json", is_flag=True)
def command(as_json: bool) -> None:
    """List the registered models and whether their weights are available offline right now."""
    settings = make_settings()
    rows = [
        {
            "name": spec.name,
            "available_offline": weights_store.available_offline(spec, settings.hub_checkpoints),
            "acc@1": spec.metrics.get("acc@1"),
            "params_m": round(spec.params / 1e6, 1),
            "gmacs": spec.gmacs,
            "weights": spec.weights.file_name,
            "license": spec.weights.license,
            "description": spec.description,
        }
        for spec in list_model_specs()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'model':<20} {'offline':<8} {'acc@1':>6} {'params':>7} {'GMACs':>6}  weights")
    for r in rows:
        ready = "yes" if r["available_offline"] else "no"
        size = f"{r['acc@1']:>6.2f} {r['params_m']:>6.1f}M {r['gmacs']:>6.3f}"
        click.echo(f"{r['name']:<20} {ready:<8} {size}  {r['weights']}")

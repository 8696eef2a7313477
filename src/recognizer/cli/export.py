"""``recognizer export``: build a cached artifact (needs the ``export`` extra)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from recognizer.cli.common import exit_on_error, make_settings
from recognizer.export.artifacts import EXPORTABLE
from recognizer.models import get_model_spec


@click.command("export")
@click.option("--model", "-m", help="Model name (default: the model `serve` would use).")
@click.option("--engine", "-e", required=True, type=click.Choice(EXPORTABLE))
@click.option("--weights", type=click.Path(path_type=Path), help="Weights file (default: the model's own).")
@click.option(
    "--calibration",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of real photos: calibrates INT8 and measures agreement with FP32 on a holdout part.",
)
@click.option(
    "--method",
    type=click.Choice(["minmax", "percentile", "entropy"]),
    default="minmax",
    show_default=True,
    help="INT8 range calibration.",
)
@click.option("--force", is_flag=True, help="Rebuild even if the artifact is cached.")
def command(
    model: str | None, engine: str, weights: Path | None, calibration: Path | None, method: str, force: bool
) -> None:
    """Build a cached artifact (ONNX, INT8 ONNX, OpenVINO IR, TorchScript) and print its manifest."""
    from recognizer.export import artifacts
    from recognizer.export.calibration import load_split
    from recognizer.inference.loading import choose_auto, choose_model, resolve_model_weights

    settings = make_settings(model=model, weights=weights)
    with exit_on_error():
        spec = get_model_spec(model) if model else choose_model(settings).spec
        resolved = resolve_model_weights(spec, settings)
        split = load_split(calibration, spec.preprocessing) if calibration else None
        threads = settings.effective_threads
        artifact = artifacts.build(engine, settings.cache_dir, spec, resolved, split, method, threads, force)  # type: ignore[arg-type]
        auto = choose_auto(spec, resolved, settings.cache_dir)
    click.echo(json.dumps({"artifact": str(artifact.path), "manifest": artifact.manifest}, indent=2))
    click.echo(f"recognizer: `--engine auto` now serves {spec.name} with {auto}", err=True)

"""The ``recognizer`` command.

Exit codes: 0 success; 1 some images could not be classified (each named on stderr); 2 bad usage,
configuration, model or weights (one line on stderr saying what to do).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from recognizer.config import Settings
from recognizer.engines import ENGINE_NAMES
from recognizer.engines.devices import DEVICES
from recognizer.errors import RecognizerError
from recognizer.export.artifacts import EXPORTABLE
from recognizer.imaging import find_images
from recognizer.inference import Recognition, build_predictor, choose_model
from recognizer.models import get_model_spec, list_model_specs
from recognizer.models import weights as weights_store

ENGINE_HELP = f"auto (default) or one of: {', '.join(ENGINE_NAMES)}."
DEVICE_HELP = "auto (default): a usable CUDA GPU, else the CPU; or cpu, cuda."


def _fail(message: str) -> NoReturn:
    click.echo(f"recognizer: error: {message}", err=True)
    sys.exit(2)


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn a RecognizerError into one line on stderr and exit code 2 (no traceback)."""
    try:
        yield
    except RecognizerError as exc:
        _fail(str(exc))


def make_settings(**flags: Any) -> Settings:
    """Settings from env vars, overridden by the CLI flags the user actually gave."""
    try:
        return Settings(**{key: value for key, value in flags.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid settings: {problems}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recognizer")
def main() -> None:
    """Recognize objects in photos with ImageNet-1K classifiers, offline."""


def _expand(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from find_images(path)
        else:
            yield path


def _read_all(paths: tuple[Path, ...], failures: list[str]) -> Iterator[tuple[str, bytes]]:
    for path in _expand(paths):
        try:
            yield str(path), path.read_bytes()
        except OSError as exc:
            failures.append(str(path))
            click.echo(f"recognizer: {path}: cannot read file ({exc.strerror or exc})", err=True)


def _print_table(result: Recognition) -> None:
    click.echo(result.source)
    for rank, p in enumerate(result.predictions, 1):
        click.echo(f"  {rank}. {p.label:<32.32} {p.wnid}  #{p.index:<4d} {p.score * 100:6.2f}%")


@main.command()
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--model", "-m", help="Model name (see `recognizer models`); default resnet18 if available.")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights file (state dict) for the model.")
@click.option("--engine", "-e", help=ENGINE_HELP)
@click.option("--top-k", "-k", type=int, help="How many labels per image (default 5).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image on stdout.")
@click.option("--threads", type=int, help="Intra-op threads (default: all cores).")
@click.option("--device", type=click.Choice(DEVICES), help=DEVICE_HELP)
@click.option(
    "--draft/--no-draft",
    "jpeg_draft",
    default=None,
    help="Fast decode+resize (default); --no-draft: torchvision's exact pixels.",
)
def predict(photos: tuple[Path, ...], as_json: bool, **flags: Any) -> None:
    """Classify PHOTOS (files or folders) and print the Top-K ImageNet labels."""
    settings = make_settings(**flags)
    with exit_on_error():
        choice = choose_model(settings)
        predictor = build_predictor(settings, choice)
    if choice.reason and settings.model is None and choice.spec.name != "resnet18":
        click.echo(f"recognizer: note: {choice.reason}", err=True)
    if not as_json:
        weights = predictor.weights.describe() if predictor.weights else "no weights"
        engine = predictor.engine
        click.echo(f"model {choice.spec.name} · engine {engine.name} on {engine.info.device} · {weights}\n")
    failures: list[str] = []
    try:
        for result in predictor.classify_stream(_read_all(photos, failures), settings.top_k):
            if result.error is not None:
                failures.append(result.source)
                click.echo(f"recognizer: {result.source}: {result.error}", err=True)
            elif as_json:
                click.echo(json.dumps(result.as_dict()))
            else:
                _print_table(result)
    finally:
        predictor.close()
    sys.exit(1 if failures else 0)


@main.command()
@click.option("--host", help="Listen address (default 127.0.0.1; 0.0.0.0 to serve the network).")
@click.option("--port", type=int, help="Port (default 8000).")
@click.option("--workers", type=int, help="Server processes (default 1); cores are split between them.")
@click.option("--model", "-m", help="Default model (default resnet18 if available, else efficientnet_lite0).")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights file for the default model.")
@click.option("--engine", "-e", help=ENGINE_HELP)
@click.option("--threads", type=int, help="Intra-op threads per worker (default: cores / workers).")
@click.option("--device", type=click.Choice(DEVICES), help=DEVICE_HELP)
@click.option("--max-batch", type=int, help="Largest micro-batch (default 16).")
@click.option("--max-wait-ms", type=float, help="Longest wait for a micro-batch to fill (default 5).")
@click.option("--access-log/--no-access-log", default=None, help="Log every request (default on).")
def serve(**flags: Any) -> None:
    """Run the web page and HTTP API (http://127.0.0.1:8000 by default)."""
    import uvicorn

    settings = make_settings(**flags)
    click.echo(
        f"recognizer: serving on http://{settings.host}:{settings.port} ({settings.workers} worker(s))",
        err=True,
    )
    if settings.workers == 1:
        from recognizer.api import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=settings.access_log,
        )
        return
    # Worker processes rebuild Settings from the environment, so pass the flags on through it.
    for key, value in flags.items():
        if value is not None:
            os.environ[f"RECOGNIZER_{key.upper()}"] = str(value)
    uvicorn.run(
        "recognizer.api.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=settings.access_log,
    )


@main.command("export")
@click.option("--model", "-m", required=True, help="Model name.")
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
def export_command(
    model: str, engine: str, weights: Path | None, calibration: Path | None, method: str, force: bool
) -> None:
    """Build a cached artifact (ONNX, INT8 ONNX, OpenVINO IR, TorchScript) and print its manifest."""
    from recognizer.engines import choose_auto
    from recognizer.export import artifacts
    from recognizer.export.calibration import load_split

    settings = make_settings(model=model, weights=weights)
    with exit_on_error():
        spec = get_model_spec(model)
        resolved = weights_store.resolve_weights(
            spec, settings.hub_checkpoints, explicit=settings.weights, allow_download=settings.allow_download
        )
        split = load_split(calibration, spec.preprocessing) if calibration else None
        artifact = artifacts.build(
            engine,
            settings.cache_dir,
            spec,
            resolved,
            split,
            method,  # type: ignore[arg-type]
            settings.effective_threads,
            force,
        )
        auto = choose_auto(spec, resolved, settings.cache_dir)
    click.echo(json.dumps({"artifact": str(artifact.path), "manifest": artifact.manifest}, indent=2))
    click.echo(f"recognizer: `--engine auto` now serves {spec.name} with {auto}", err=True)


@main.command("models")
@click.option("--json", "as_json", is_flag=True)
def models_command(as_json: bool) -> None:
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


@main.group("weights")
def weights_group() -> None:
    """Fetch or import weights into the torch hub cache, where every command finds them."""


@weights_group.command("fetch")
@click.argument("name")
def weights_fetch(name: str) -> None:
    """Download NAME's published weights (needs internet) and verify their hash."""
    settings = make_settings()
    with exit_on_error():
        resolved = weights_store.fetch_weights(get_model_spec(name), settings.hub_checkpoints)
    click.echo(f"{name}: {resolved.path} (sha256 {resolved.sha256[:16]}…)")


@weights_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
def weights_import(name: str, file: Path) -> None:
    """Verify FILE against NAME's published hash and copy it into the cache."""
    settings = make_settings()
    with exit_on_error():
        resolved = weights_store.import_weights(get_model_spec(name), file, settings.hub_checkpoints)
    click.echo(f"{name}: imported to {resolved.path}")


@weights_group.command("path")
@click.argument("name")
def weights_path(name: str) -> None:
    """Print the verified weights file NAME would use, or fail saying how to get one."""
    settings = make_settings()
    with exit_on_error():
        resolved = weights_store.resolve_weights(get_model_spec(name), settings.hub_checkpoints)
    click.echo(str(resolved.path))

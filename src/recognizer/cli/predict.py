"""``recognizer predict``: classify files and folders through the same pipeline as the server."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from recognizer.cli.common import exit_on_error, make_settings, model_options
from recognizer.config import Settings
from recognizer.imaging import IMAGE_SUFFIXES, find_images
from recognizer.inference import Pipeline, Recognition
from recognizer.storage.history import History


@click.command("predict")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image on stdout.")
@click.option(
    "--draft/--no-draft",
    "jpeg_draft",
    default=None,
    help="Fast decode+resize (default); --no-draft: torchvision's exact pixels.",
)
@click.option("--record", is_flag=True, help="Keep each result in the history database too (source: cli).")
def command(photos: tuple[Path, ...], as_json: bool, record: bool, **flags: Any) -> None:
    """Classify PHOTOS (files or folders) and print the Top-K ImageNet labels."""
    settings = make_settings(**flags)
    failures: list[str] = []
    asyncio.run(_predict(settings, photos, as_json, failures, record))
    sys.exit(1 if failures else 0)


async def _predict(
    settings: Settings, photos: tuple[Path, ...], as_json: bool, failures: list[str], record: bool
) -> None:
    with exit_on_error():
        pipeline = Pipeline(settings)
        history = History(settings) if record else None
    if history is not None:
        pipeline.hooks.add(history.writer)
    try:
        with exit_on_error():
            slot = await pipeline.wait_ready()
        choice = pipeline.default_choice
        if choice.reason and settings.model is None and choice.spec.name != "resnet18":
            click.echo(f"recognizer: note: {choice.reason}", err=True)
        if not as_json:
            engine = slot.model.engine
            weights = slot.model.weights.describe()
            click.echo(f"model {slot.spec.name} · engine {engine.name} on {engine.info.device} · {weights}\n")
        async for result in pipeline.recognize_many(_read_all(photos, failures), source="cli"):
            _report(result, as_json, failures)
    finally:
        await pipeline.stop()  # writes out the history queue
        if history is not None:
            history.close()
            click.echo(f"recognizer: {history.writer.written} result(s) recorded in {history.url}", err=True)


def _report(result: Recognition, as_json: bool, failures: list[str]) -> None:
    if result.error is not None:
        failures.append(result.name)
        click.echo(f"recognizer: {result.name}: {result.error}", err=True)
    elif as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        _print_table(result)


def _expand(paths: tuple[Path, ...], failures: list[str]) -> Iterator[Path]:
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        found = find_images(path)
        if not found:
            failures.append(str(path))
            suffixes = " ".join(sorted(IMAGE_SUFFIXES))
            click.echo(f"recognizer: {path}: no images in this folder (looked for {suffixes})", err=True)
        yield from found


def _read_all(paths: tuple[Path, ...], failures: list[str]) -> Iterator[tuple[str, bytes]]:
    for path in _expand(paths, failures):
        try:
            yield str(path), path.read_bytes()
        except OSError as exc:
            failures.append(str(path))
            click.echo(f"recognizer: {path}: cannot read file ({exc.strerror or exc})", err=True)


def _print_table(result: Recognition) -> None:
    click.echo(result.name)
    for rank, p in enumerate(result.predictions, 1):
        click.echo(f"  {rank}. {p.label:<32.32} {p.wnid}  #{p.index:<4d} {p.score * 100:6.2f}%")
    if result.groups:
        top = ", ".join(f"{g.name} {g.score * 100:.1f}%" for g in result.groups[:3])
        click.echo(f"  groups: {top}")

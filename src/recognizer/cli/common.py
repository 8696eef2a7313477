"""What every command shares: settings from flags, one-line errors, exit codes, shared options.

Exit codes: 0 success; 1 some inputs could not be classified (each named on stderr); 2 bad usage,
configuration, model or weights (one line on stderr saying what to do).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from recognizer.config import Settings
from recognizer.engines.devices import DEVICES
from recognizer.engines.kinds import ENGINE_NAMES
from recognizer.errors import RecognizerError

ENGINE_HELP = f"auto (default) or one of: {', '.join(ENGINE_NAMES)}."
DEVICE_HELP = "auto (default): a usable CUDA GPU, else the CPU; or cpu, cuda."


def fail(message: str) -> NoReturn:
    click.echo(f"recognizer: error: {message}", err=True)
    sys.exit(2)


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn a RecognizerError into one line on stderr and exit code 2 (no traceback)."""
    try:
        yield
    except RecognizerError as exc:
        fail(str(exc))


def make_settings(**flags: Any) -> Settings:
    """Settings from env vars, overridden by the CLI flags the user actually gave."""
    try:
        return Settings(**{key: value for key, value in flags.items() if value is not None})
    except ValidationError as exc:
        fail(f"invalid settings: {'; '.join(_describe(e) for e in exc.errors())}")


def _describe(error: Any) -> str:
    """``--top-k / RECOGNIZER_TOP_K: ...``, whether the value came from a flag or the environment."""
    field = str(error["loc"][-1]).removeprefix("RECOGNIZER_").lower() if error["loc"] else "value"
    flat = "engine" if field == "name" else field  # the engine section's field is its flat name
    return f"--{flat.replace('_', '-')} / RECOGNIZER_{flat.upper()}: {error['msg']}"


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--model, --weights, --engine, --device, --threads, --top-k, --labels, --groups."""
    for option in reversed(_MODEL_OPTIONS):
        command = option(command)
    return command


_MODEL_OPTIONS: tuple[Decorator, ...] = (
    click.option(
        "--model", "-m", help="Model name (see `recognizer models`); default resnet18 if available."
    ),
    click.option(
        "--weights", type=click.Path(path_type=Path), help="Weights file (state dict) for the model."
    ),
    click.option("--engine", "-e", help=ENGINE_HELP),
    click.option("--device", type=click.Choice(DEVICES), help=DEVICE_HELP),
    click.option("--threads", type=int, help="Intra-op threads (default: cores / workers)."),
    click.option("--top-k", "-k", type=int, help="How many labels per image (default 5)."),
    click.option(
        "--labels",
        type=click.Path(path_type=Path),
        help="CSV or JSON file of display names (index or wnid -> name), e.g. labels in another language.",
    ),
    click.option(
        "--groups",
        is_flag=False,
        flag_value="builtin",
        help="Add label-group scores (dog, cat, vehicle, ...): built-in groups, or --groups=FILE (JSON/CSV).",
    ),
    click.option("--max-batch", type=int, help="Largest engine batch (default 16)."),
)

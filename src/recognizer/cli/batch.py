"""``recognizer batch``: a folder job, resumable, with a progress bar; ``--ray`` runs it on Ray Data."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from recognizer.cli.common import exit_on_error, make_settings, model_options
from recognizer.config import Settings
from recognizer.inference import Pipeline
from recognizer.jobs import inputs, runner
from recognizer.jobs.ledger import Ledger


@click.command("batch")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--out", "-o", required=True, type=click.Path(path_type=Path), help="Results: .csv, .jsonl or .parquet."
)
@click.option(
    "--format", "format_", type=click.Choice(["csv", "jsonl", "parquet"]), help="Override the suffix."
)
@model_options
@click.option(
    "--ledger",
    type=click.Path(path_type=Path),
    help="Where finished inputs are kept for resuming (default: OUT.ledger beside the output).",
)
@click.option("--fresh", is_flag=True, help="Forget earlier runs' results and recompute everything.")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar, no summary; one line on stderr if any input failed."
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    metavar="[ADDRESS|auto|local]",
    help="Run on Ray Data: local (the default value) starts a Ray on this machine, auto joins this "
    "machine's cluster, else HOST:6379 or ray://HOST:10001. No ledger: the whole job runs each time.",
)
@click.option(
    "--ray-actors",
    type=click.IntRange(min=1),
    help="With --ray: model copies (Ray actors), each with --threads CPUs and engine threads "
    "(default 1); default: the cluster's CPUs / --threads.",
)
def command(
    sources: tuple[str, ...],
    out: Path,
    format_: str | None,
    ledger: Path | None,
    fresh: bool,
    quiet: bool,
    ray_address: str | None,
    ray_actors: int | None,
    **flags: Any,
) -> None:
    """Classify every image in SOURCES (folders, files, globs, .zip/.tar archives) into one results
    file. Run it again after an interruption and it finishes only what is left."""
    settings = make_settings(**flags)
    with exit_on_error():
        format = runner.format_of(out, format_)
        resolved = inputs.resolve(sources)
        total = inputs.count(resolved)
    if ray_address is not None:
        if (ledger or fresh) and not quiet:
            click.echo("recognizer: note: --ray keeps no ledger; --ledger and --fresh are ignored", err=True)
        sys.exit(_run_on_ray(settings, resolved, out, format, quiet, ray_address, ray_actors))
    ledger_path = ledger or out.with_name(out.name + ".ledger")
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{ledger_path}{suffix}").unlink(missing_ok=True)
    progress = _progress(quiet, total)
    try:
        counts = asyncio.run(_run(settings, resolved, ledger_path, out, format, progress))
    except KeyboardInterrupt:
        click.echo(
            f"\nrecognizer: interrupted after {progress.done} of {total} input(s); {out} was not written."
            " Run the same command again to finish the rest.",
            err=True,
        )
        sys.exit(130)
    sys.exit(1 if counts.failed else 0)


async def _run(
    settings: Settings,
    sources: list[inputs.Source],
    ledger_path: Path,
    out: Path,
    format: str,
    progress: _progress,
) -> runner.Counts:
    with exit_on_error():
        pipeline = Pipeline(settings)
    try:
        with exit_on_error():
            slot = await pipeline.wait_ready()
            ledger = Ledger(ledger_path, runner.job_fingerprint(slot, settings, runner.Options()))
        started = time.perf_counter()
        try:
            with progress as observe:
                counts = await runner.run(pipeline, sources, ledger, total=progress.total, observe=observe)
            runner.write_output(ledger.rows(), out, format)
        finally:
            ledger.close()
    finally:
        await pipeline.stop()
    if not progress.quiet:
        _summary(counts, out, format, time.perf_counter() - started, slot.model.engine.name, slot.spec.name)
    elif counts.failed:
        click.echo(f"recognizer: {counts.failed} input(s) failed; their rows in {out} say why", err=True)
    return counts


def _run_on_ray(
    settings: Settings,
    sources: list[inputs.Source],
    out: Path,
    format: str,
    quiet: bool,
    address: str,
    actors: int | None,
) -> int:
    """The same job on Ray Data (recognizer.scaleout.data); the exit code (1: some input failed)."""
    from recognizer.scaleout import data

    with exit_on_error():
        job = data.prepare(settings, sources)
        started = time.perf_counter()
        with _progress(quiet, len(job.files)) as observe:
            counts = data.run(job, out, format, address=address, actors=actors, observe=observe)
    if not quiet:
        _summary(counts, out, format, time.perf_counter() - started, f"{job.engine} (Ray Data)", job.model)
    elif counts.failed:
        click.echo(f"recognizer: {counts.failed} input(s) failed; their rows in {out} say why", err=True)
    return 1 if counts.failed else 0


class _Rate(ProgressColumn):
    """Images per second over rich's recent window (inputs found in the ledger count too)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f} images/s", style="progress.data.speed")


class _progress:
    """The progress bar on stderr (or nothing with --quiet); yields the runner's observer."""

    def __init__(self, quiet: bool, total: int) -> None:
        self.quiet, self.total = quiet, total
        console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]recognizing"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
        )
        self.task = self.bar.add_task("job", total=total, failed=0)

    def __enter__(self) -> runner.Observer:
        self.bar.start()
        return self.observe

    @property
    def done(self) -> int:
        """Inputs finished so far (what the message after Ctrl-C reports)."""
        return int(self.bar.tasks[0].completed)

    def observe(self, counts: runner.Counts) -> None:
        self.bar.update(self.task, completed=counts.done, failed=counts.failed)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _summary(counts: runner.Counts, out: Path, format: str, seconds: float, engine: str, model: str) -> None:
    rate = (counts.done - counts.reused) / max(seconds, 1e-9)
    click.echo(
        f"recognizer: {counts.done} input(s), {counts.done - counts.failed} recognised,"
        f" {counts.failed} failed ({counts.reused} from an earlier run) with {model} on {engine};"
        f" {rate:,.1f} new images/s; results in {out} ({format})",
        err=True,
    )

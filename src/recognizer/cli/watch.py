"""``recognizer watch SOURCE...``: video files, cameras and stream URLs -> one line per event."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from recognizer.cli.common import exit_on_error, make_settings, model_options
from recognizer.config import Settings
from recognizer.inference import Pipeline
from recognizer.streams import assembly
from recognizer.streams.dispatch import Dispatcher
from recognizer.streams.runner import StreamRunner, StreamSpec
from recognizer.streams.sinks import StdoutSink
from recognizer.streams.sources import parse_source

#: how long `watch` waits at the end for the webhook receiver to take what is left
DRAIN_S = 10.0


@click.command("watch")
@click.argument("sources", nargs=-1, required=True)
@click.option("--fps", "stream_fps", type=float, help="Frames sampled per second (default 2).")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Rules file (TOML or YAML); default: one rule per built-in label group, printed to stdout.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of a line.")
@click.option(
    "--no-realtime",
    is_flag=True,
    help="Replay files as fast as the model allows, every sampled frame: the same event log every run.",
)
@click.option(
    "--read-timeout",
    "stream_read_timeout_s",
    type=float,
    help="Seconds of silence before a source is lost (max 5).",
)
@model_options
def command(
    sources: tuple[str, ...], rules_file: Path | None, as_json: bool, no_realtime: bool, **flags: Any
) -> None:
    """Watch SOURCES (video files, rtsp://, http(s)://, tcp:// URLs, /dev/video0 or a camera index) and
    print one line per event (started, ended, source_lost, source_restored) until they end or Ctrl-C."""
    settings = make_settings(**flags)
    with exit_on_error():
        parsed = [parse_source(text) for text in sources]
    names = _names([source.display for source in parsed])
    sys.exit(asyncio.run(_watch(settings, list(sources), names, rules_file, as_json, not no_realtime)))


async def _watch(
    settings: Settings,
    urls: list[str],
    names: list[str],
    rules_file: Path | None,
    as_json: bool,
    realtime: bool,
) -> int:
    with exit_on_error():
        pipeline = Pipeline(settings)
    runners: list[StreamRunner] = []
    dispatcher: Dispatcher | None = None
    state = None
    try:
        with exit_on_error():
            slot = await pipeline.wait_ready()
            rules = assembly.rules_for(slot.model, rules_file)
            state = _state(settings, rules)
            loop = asyncio.get_running_loop()
            stdout = StdoutSink(
                as_json,
                _events_only_stdout(),
                on_closed=lambda: loop.call_soon_threadsafe(_stop_all, runners),
            )
            wanted = assembly.sink_names(rules, ["stdout"])
            history = _history(settings) if "history" in wanted else None
            dispatcher = Dispatcher(
                assembly.build_sinks(settings, wanted, state=state, stdout=stdout, history=history),
                claims=state,
            )
            for url, name in zip(urls, names, strict=True):
                spec = StreamSpec(name, url, settings.streams.fps, tuple(rules))
                runners.append(
                    assembly.make_runner(
                        spec,
                        settings,
                        pipeline,
                        dispatcher,
                        slot.model,
                        realtime=realtime,
                        fail_fast=True,
                        cooldowns=state,
                    )
                )
        return await _run(runners)
    finally:
        if dispatcher is not None:
            await asyncio.to_thread(_close, dispatcher, state)
        await pipeline.stop()


async def _run(runners: list[StreamRunner]) -> int:
    """Until every source ends, Ctrl-C (a second one quits at once), or a source cannot start."""
    loop = asyncio.get_running_loop()

    def interrupted(sig: signal.Signals) -> None:
        _stop_all(runners)
        loop.remove_signal_handler(sig)  # the next Ctrl-C is the default: leave now

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted, sig)
    watchdog = asyncio.create_task(_stop_when_one_cannot_start(runners))
    outcomes = await asyncio.gather(*(runner.run() for runner in runners), return_exceptions=True)
    watchdog.cancel()
    for runner, outcome in zip(runners, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            click.echo(f"recognizer: error: {runner.spec.name}: stopped by {outcome!r}", err=True)
    failed = [r for r in runners if r.reader.stats.state == "failed"]
    for runner in failed:
        click.echo(
            f"recognizer: error: {runner.reader.source.display}: {runner.reader.stats.reason}", err=True
        )
    if failed and all(r.reader.stats.sampled == 0 for r in failed):
        return 2
    return 1 if failed or any(isinstance(o, BaseException) for o in outcomes) else 0


async def _stop_when_one_cannot_start(runners: list[StreamRunner]) -> None:
    """A source that cannot start stops the whole command (exit 2), not after the others end."""
    while True:
        await asyncio.sleep(0.2)
        if any(r.reader.stats.state == "failed" and r.reader.stats.sampled == 0 for r in runners):
            _stop_all(runners)
            return


def _stop_all(runners: list[StreamRunner]) -> None:
    for runner in runners:
        runner.stop()


def _events_only_stdout() -> TextIO:
    """stdout for the events alone: anything else that writes to file descriptor 1 (FFmpeg's and
    GStreamer's native code, a stray print) goes to stderr instead, so ``--json`` output is only
    JSON lines."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return events


def _close(dispatcher: Dispatcher, state: Any) -> None:
    """Send what the webhook outbox holds (a short file's events) before leaving, then close."""
    left = dispatcher.drain(DRAIN_S)
    if left:
        click.echo(
            f"recognizer: {left} webhook event(s) not delivered yet; they stay in the outbox and go "
            "with the next `watch` or the server",
            err=True,
        )
    dispatcher.close()
    if state is not None:
        state.close()


def _state(settings: Settings, rules: list[Any]) -> Any:
    """The shared state file, when a sink or a cooldown needs it to outlive this process."""
    if not any(rule.cooldown_s or set(rule.sinks) - {"stdout", "history"} for rule in rules):
        return None
    from recognizer.streams.state import StreamState

    return StreamState(assembly.state_path(settings))


def _history(settings: Settings) -> Any:
    """The history sink: events into the history database (SQLite in the data folder by default)."""
    from recognizer.storage.history import open_database
    from recognizer.streams.service import HistorySink

    database = open_database(settings.with_flags(history="on"))
    return HistorySink(database) if database is not None else None


def _names(displays: list[str]) -> list[str]:
    """Short stream names for the event lines: the file's name or the URL's host and path."""
    names = []
    for display in displays:
        name = Path(display).name if "://" not in display else display.split("://", 1)[1].split("@")[-1]
        base, n = name, 2
        while name in names:
            name, n = f"{base}#{n}", n + 1
        names.append(name)
    return names

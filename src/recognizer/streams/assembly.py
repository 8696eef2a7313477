"""Putting a stream together from settings: its rules, its reader, the sinks its rules name.

Shared by ``recognizer watch`` and the server's ``/v1/streams``, so both check the same things the
same way: a rule that sends to the webhook without ``RECOGNIZER_WEBHOOK_URL`` is refused before any
stream starts, not discovered at the first event.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from recognizer.config import Settings
from recognizer.errors import ConfigError
from recognizer.inference.loading import LoadedModel
from recognizer.inference.pipeline import Options, Pipeline
from recognizer.streams.dispatch import Dispatcher
from recognizer.streams.events import StreamRules
from recognizer.streams.reader import FrameReader
from recognizer.streams.rules import Rule, load_rules, parse_rule, parse_rules
from recognizer.streams.runner import StreamRunner, StreamSpec
from recognizer.streams.sinks import Sink, StdoutSink
from recognizer.streams.sources import parse_source

#: without a rules file: every built-in group is a rule, smoothed over about 2 s at the default fps
DEFAULT_RULE = {"window": 4, "on": 0.5, "off": 0.3, "min_duration_s": 1.0, "min_gap_s": 1.0}
#: frames' top-k for rules: labels below the top-k score 0
STREAM_OPTIONS = Options(top_k=5, groups=True)


def rules_for(
    model: LoadedModel, rules_file: Path | None, sinks: tuple[str, ...] = ("stdout",)
) -> list[Rule]:
    """The rules file's rules, or one rule per built-in group."""
    if rules_file is not None:
        return load_rules(rules_file, model.labels, model.groups)
    defaults = {**DEFAULT_RULE, "sinks": list(sinks)}
    return [
        parse_rule({"name": g, "groups": [g]}, defaults, model.labels, model.groups, "default rules")
        for g in model.groups.names
    ]


def rules_from_json(model: LoadedModel, data: Any) -> list[Rule]:
    """``POST /v1/streams``'s ``rules``: ``{"defaults": {...}, "rule": [...]}`` or a list of rules."""
    if data is None:
        return rules_for(model, None)
    if isinstance(data, list):
        data = {"rule": data}
    if not isinstance(data, dict):
        raise ConfigError("rules must be an object with defaults and rule, or a list of rules")
    return parse_rules(data, model.labels, model.groups, "rules")


def sink_names(rules: Iterable[Rule], base: Iterable[str] = ()) -> list[str]:
    return list(dict.fromkeys([*base, *(name for rule in rules for name in rule.sinks)]))


def build_sinks(
    settings: Settings,
    names: Iterable[str],
    *,
    state: Any = None,
    history: Any = None,
    stdout: Sink | None = None,
) -> list[Sink]:
    """One sink per name, checked against the settings it needs."""
    sinks: list[Sink] = []
    for name in dict.fromkeys(names):
        if name == "stdout":
            sinks.append(stdout or StdoutSink())
        elif name == "webhook":
            sinks.append(_webhook(settings, state))
        elif name == "mqtt":
            sinks.append(_mqtt(settings))
        elif name == "history":
            if history is None:
                raise ConfigError("a rule sends to the history sink, but no history database is in use here")
            sinks.append(history)
    return sinks


def _webhook(settings: Settings, state: Any) -> Sink:
    from recognizer.streams.webhook import WebhookSink

    url = settings.streams.webhook_url
    if not url:
        raise ConfigError("a rule sends to the webhook sink: set RECOGNIZER_WEBHOOK_URL (and _SECRET)")
    if state is None:
        raise ConfigError("the webhook sink needs the streams' state file for its outbox")
    return WebhookSink(url, settings.streams.webhook_secret, state)


def _mqtt(settings: Settings) -> Sink:
    from recognizer.streams.mqtt import MqttSink

    if not settings.streams.mqtt_url:
        raise ConfigError("a rule sends to the MQTT sink: set RECOGNIZER_MQTT_URL (mqtt://host:1883)")
    return MqttSink(settings.streams.mqtt_url, settings.streams.mqtt_topic)


def state_path(settings: Settings) -> Path:
    """Cooldowns, claimed event ids and the webhook outbox: one file per data folder, shared by workers."""
    return settings.data_dir.expanduser() / "streams.sqlite"


def make_runner(
    spec: StreamSpec,
    settings: Settings,
    pipeline: Pipeline,
    dispatcher: Dispatcher,
    model: LoadedModel,
    *,
    realtime: bool = True,
    fail_fast: bool = False,
    cooldowns: Any = None,
    check_file: bool = True,
) -> StreamRunner:
    source = parse_source(spec.url, check_file=check_file)
    reader = FrameReader(
        source,
        fps=spec.fps,
        resize=model.spec.preprocessing.resize,
        realtime=realtime,
        read_timeout_s=settings.streams.read_timeout_s,
        reconnect_max_s=settings.streams.reconnect_max_s,
        fail_fast=fail_fast,
    )
    # A file's times are media seconds, starting again at 0 each run: its cooldowns are per run.
    rules = StreamRules(spec.name, list(spec.rules), cooldowns if source.live else None)
    return StreamRunner(spec, reader, pipeline, dispatcher, rules, STREAM_OPTIONS)

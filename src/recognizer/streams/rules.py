"""Alert rules: which labels or groups, above which score, for how long, how often, to which sinks.

A rules file is TOML (or YAML with PyYAML installed)::

    [defaults]                 # optional; every rule inherits these
    smoothing = "average"      # or "k_of_n"
    window = 5                 # frames
    on = 0.5                   # start when the smoothed score reaches this
    off = 0.3                  # end when it falls below this
    min_duration_s = 1.0       # ... and has held that long
    min_gap_s = 2.0
    cooldown_s = 60            # no second "started" for a rule within this after one
    sinks = ["stdout"]

    [[rule]]
    name = "cat"
    groups = ["cat"]           # label groups (built-in, or --groups FILE)

    [[rule]]
    name = "red fox"
    labels = ["red fox", "n02119022", 277]   # display names, wnids or class indices
    on = 0.7

A rule's score on a frame is the highest of its labels' probabilities (from the frame's top-k) and
its groups' summed probabilities. Everything is checked when the file is read: an unknown label or
group, a bad threshold or an unknown key is one line naming the rule and what to fix.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from recognizer.errors import ConfigError
from recognizer.inference.results import Recognition
from recognizer.models.labels import ClassLabel
from recognizer.models.vocabulary import LabelGroups
from recognizer.streams.smoothing import Smoothing

SINKS = ("stdout", "history", "webhook", "mqtt")
_SMOOTHING_KEYS = {f.name: f.name for f in fields(Smoothing)} | {"smoothing": "method"}
_RULE_KEYS = {"name", "labels", "groups", "cooldown_s", "sinks", *_SMOOTHING_KEYS}


@dataclass(frozen=True)
class Rule:
    name: str
    labels: frozenset[int]
    groups: frozenset[str]
    smoothing: Smoothing
    cooldown_s: float = 0.0
    sinks: tuple[str, ...] = ("stdout",)

    def score(self, result: Recognition) -> float:
        """The rule's score on one frame: its best label or group."""
        best = max((p.score for p in result.predictions if p.index in self.labels), default=0.0)
        if self.groups and result.groups:
            best = max(best, max((g.score for g in result.groups if g.name in self.groups), default=0.0))
        return best


def load_rules(path: Path, labels: tuple[ClassLabel, ...], groups: LabelGroups) -> list[Rule]:
    """A rules file, read and checked against the model's labels and groups."""
    return parse_rules(_read(path), labels, groups, f"rules file {path}")


def parse_rules(
    data: dict[str, Any], labels: tuple[ClassLabel, ...], groups: LabelGroups, where: str
) -> list[Rule]:
    """Rules as a file or ``POST /v1/streams`` gives them (``{"defaults": ..., "rule": [...]}``),
    every check made, each failure one line that starts with ``where``."""
    unknown = set(data) - {"defaults", "rule", "rules"}
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}; use defaults, rule")
    defaults = data.get("defaults", {})
    entries = data.get("rule", data.get("rules", []))
    if not isinstance(defaults, dict) or not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: give at least one [[rule]] (a list of tables, or of JSON objects)")
    rules = [parse_rule(entry, defaults, labels, groups, where) for entry in entries]
    names = [rule.name for rule in rules]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"{where}: rule name(s) {', '.join(twice)} used twice; names must differ")
    return rules


def parse_rule(
    entry: Any, defaults: dict[str, Any], labels: tuple[ClassLabel, ...], groups: LabelGroups, where: str
) -> Rule:
    """One rule (a table of the file, or the JSON of ``POST /v1/streams``), defaults filled in."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise ConfigError(f'{where}: every rule needs a name (name = "...")')
    name = entry["name"].strip()
    merged = {**defaults, **entry}
    unknown = set(merged) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{where}, rule {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        smoothing = Smoothing(**{_SMOOTHING_KEYS[k]: v for k, v in merged.items() if k in _SMOOTHING_KEYS})
        rule = Rule(
            name,
            frozenset(_label_indices(merged.get("labels", []), labels)),
            frozenset(_group_names(merged.get("groups", []), groups)),
            smoothing,
            _cooldown(merged.get("cooldown_s", 0.0)),
            _sinks(merged.get("sinks", ["stdout"])),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}, rule {name!r}: {exc}") from None
    if not rule.labels and not rule.groups:
        raise ConfigError(f"{where}, rule {name!r}: give labels, groups or both")
    return rule


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"rules file {path}: cannot read it ({exc.strerror or exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml(text, path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rules file {path} is not valid TOML ({exc})") from None


def _yaml(text: str, path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"rules file {path}: YAML needs PyYAML (pip install pyyaml), or write TOML"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"rules file {path} is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"rules file {path}: expected a mapping with defaults and rule")
    return _unbool_keys(data)


def _unbool_keys(value: Any) -> Any:
    """YAML 1.1 reads the keys ``on`` and ``off`` as true and false: give them their names back."""
    if isinstance(value, dict):
        names = {True: "on", False: "off"}
        return {names.get(k, k) if isinstance(k, bool) else k: _unbool_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unbool_keys(item) for item in value]
    return value


def _label_indices(given: Any, labels: tuple[ClassLabel, ...]) -> Iterable[int]:
    if not isinstance(given, list):
        raise ConfigError("labels must be a list of names, wnids or class indices")
    by_key: dict[object, int] = {}
    for label in labels:
        by_key.update({label.index: label.index, label.wnid: label.index, label.label.lower(): label.index})
    found = []
    for item in given:
        key = item.lower() if isinstance(item, str) else item
        if isinstance(key, bool) or key not in by_key:
            names = [label.label for label in labels]
            close = difflib.get_close_matches(str(item), names, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"unknown label {item!r}{hint} (use a class name, a wnid or an index)")
        found.append(by_key[key])
    return found


def _group_names(given: Any, groups: LabelGroups) -> Iterable[str]:
    if not isinstance(given, list) or not all(isinstance(item, str) for item in given):
        raise ConfigError("groups must be a list of group names")
    for item in given:
        if item not in groups.names:
            close = difflib.get_close_matches(item, groups.names, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(
                f"unknown group {item!r}{hint} (`recognizer models` and GET /v1/groups list them)"
            )
    return given


def _cooldown(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"cooldown_s must be a number of seconds, 0 or more, not {value!r}")
    return float(value)


def _sinks(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError("sinks must be a list of names")
    unknown = [item for item in value if item not in SINKS]
    if unknown:
        raise ConfigError(f"unknown sink(s) {', '.join(unknown)}; choose from {', '.join(SINKS)}")
    return tuple(value)

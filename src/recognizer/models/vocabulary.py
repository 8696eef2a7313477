"""Custom vocabularies (display names) and label groups ("is there a dog?").

Two things a user adapts without retraining anything:

* **Labels**: the display name of each class, e.g. in another language. The model still predicts the
  same 1000 classes, so a labels file may only rename them: index and wnid always stay the base's,
  and a file must name every class, because a missing name would surface later as a gap in an
  HTTP response rather than now, at start-up, where it can be fixed.
* **Label groups**: named sets of classes whose probabilities are summed, because a monitoring user
  asks "is there a dog?", not "is it a Norfolk terrier?"; with 118 dog breeds the top-1 breed can be
  unsure while "dog" is certain. The built-in groups are derived from WordNet 3.0 by
  ``tools/make_label_groups.py``; a user file replaces them.

Files are JSON or CSV, keyed by class index (``"207"``) or wnid (``"n02099601"``). Every refusal is
a one-line :class:`~recognizer.errors.ConfigError` that names the file, the problem and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from recognizer.errors import ConfigError
from recognizer.models.labels import ClassLabel

_SUFFIXES = (".json", ".csv")
# What a key cell looks like; a first CSV row whose key cell does not is a header. Judged by shape,
# not by lookup, so that a typo in the first row is reported as an unknown key, not skipped.
_KEY_SHAPE = re.compile(r"[0-9]+|n[0-9]{8}")
_SHOWN = 3  # how many offending items a one-line message names

Entry = tuple[object, object, object]  # (key, name, wnid the file claims for it or None)


class _Pairs(list):
    """A JSON object kept as its (key, value) pairs, so a repeated key is reported, not dropped."""


# --- reading files ---------------------------------------------------------------------------------


def _read_text(path: Path, what: str) -> str:
    """File text, with every way of being unreadable turned into a message a user can act on."""
    if path.suffix.lower() not in _SUFFIXES:
        suffix = f"the suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise ConfigError(f"{what} file {path} has {suffix}; use a .json or .csv file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist; check the path") from None
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(f"cannot read {what} file {path}: {reason}; make it a readable file") from None
    try:
        return data.decode("utf-8-sig")  # "-sig": editors on Windows like to start files with a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it with UTF-8 encoding"
        ) from None


def _parse_json(text: str, path: Path, what: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} file {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
            "fix the syntax there"
        ) from None


def _csv_rows(text: str, path: Path, what: str, columns: str) -> list[tuple[int, str, str]]:
    """(line, first cell, second cell) of each non-blank row, without the optional header row."""
    try:
        reader = csv.reader(io.StringIO(text))
        rows = [(reader.line_num, _trimmed(row)) for row in reader]
    except csv.Error as exc:
        raise ConfigError(f"{what} file {path} is not valid CSV: {exc}; fix the file") from None
    rows = [(line, cells) for line, cells in rows if cells]
    if rows and len(rows[0][1]) == 2 and not _KEY_SHAPE.fullmatch(rows[0][1][_key_column(columns)]):
        rows = rows[1:]
    for line, cells in rows:
        if len(cells) != 2:
            raise ConfigError(
                f"{what} file {path} line {line} has {len(cells)} cells; each row must be {columns} "
                "(put a value that contains a comma in double quotes)"
            )
    return [(line, cells[0], cells[1]) for line, cells in rows]


def _trimmed(row: list[str]) -> list[str]:
    """Cells without surrounding blanks or trailing empty cells (spreadsheets add those)."""
    cells = [cell.strip() for cell in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _key_column(columns: str) -> int:
    return columns.split(",").index("key")


# --- keys ------------------------------------------------------------------------------------------


@cache
def _wnid_index(labels: tuple[ClassLabel, ...]) -> dict[str, int]:
    return {c.wnid: c.index for c in labels}


def _class_index(key: object, labels: tuple[ClassLabel, ...]) -> int | None:
    """The class a key denotes (an index as int or digit string, or a wnid), or None if none."""
    if isinstance(key, str) and key.strip().isascii() and key.strip().isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return key if 0 <= key < len(labels) else None
    return _wnid_index(labels).get(key.strip()) if isinstance(key, str) else None


def _show(values: Iterable[object], render: Callable[[object], str] = repr) -> str:
    """The first few items for a message, then how many more: messages stay one short line."""
    values = list(values)
    shown = ", ".join(_short(value, render) for value in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _short(value: object, render: Callable[[object], str] = repr) -> str:
    text = render(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(c: ClassLabel) -> str:
    return f"{c.index} ({c.wnid} {c.label})"


# --- labels ----------------------------------------------------------------------------------------


def load_labels(path: Path, base: tuple[ClassLabel, ...]) -> tuple[ClassLabel, ...]:
    """A custom display name for every class; index and wnid stay those of `base`.

    Accepts the formats people already have: a JSON object keyed by index or wnid, the standard
    ``imagenet_class_index.json`` (``{"0": ["n01440764", "tench"]}``), a JSON list of names in index
    order (the Flask demo's ``imagenet_classes.json``), or CSV rows ``key,name`` with an optional
    header.
    """
    path = Path(path)
    text = _read_text(path, "labels")
    if path.suffix.lower() == ".csv":
        entries = [(key, name, None) for _, key, name in _csv_rows(text, path, "labels", "key,name")]
    else:
        entries = _json_label_entries(_parse_json(text, path, "labels"), path, len(base))
    names = _resolve_names(entries, base, path)
    return tuple(ClassLabel(c.index, c.wnid, names[c.index]) for c in base)


def _json_label_entries(data: object, path: Path, count: int) -> list[Entry]:
    if isinstance(data, _Pairs):
        return [_json_label_entry(key, value, path) for key, value in data]
    if isinstance(data, list):
        if len(data) != count:
            raise ConfigError(
                f"labels file {path} lists {len(data)} names but the model has {count} classes; "
                "give one name per class in index order, or use an object keyed by class index or wnid"
            )
        return [(index, name, None) for index, name in enumerate(data)]
    raise ConfigError(
        f"labels file {path} holds a JSON {type(data).__name__}; use an object mapping class index or "
        f"wnid to a name, or a list of {count} names"
    )


def _json_label_entry(key: str, value: object, path: Path) -> Entry:
    if isinstance(value, str):
        return key, value, None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return key, value[1], value[0]  # imagenet_class_index.json: "0": ["n01440764", "tench"]
    raise ConfigError(
        f"labels file {path}: the value for key {key!r} is {_short(value)}; "
        'give a name ("tench") or a [wnid, name] pair (["n01440764", "tench"])'
    )


def _resolve_names(entries: list[Entry], base: tuple[ClassLabel, ...], path: Path) -> dict[int, str]:
    """Names by class index, after every check a user could fail, most basic first."""
    indexed = [(key, _class_index(key, base), name, wnid) for key, name, wnid in entries]
    _check_unknown_keys([key for key, index, _, _ in indexed if index is None], path, "labels")
    names: dict[int, str] = {}
    keys: dict[int, object] = {}
    for key, index, name, wnid in indexed:
        if index in names:
            raise ConfigError(
                f"labels file {path} names class {_describe(base[index])} twice (keys {keys[index]!r} "
                f"and {key!r}); keep one entry per class"
            )
        _check_claimed_wnid(key, wnid, base[index], path)
        names[index], keys[index] = _clean_name(name, base[index], path), key
    _check_complete(names, base, path)
    return names


def _check_unknown_keys(unknown: list[object], path: Path, what: str, render: Callable = repr) -> None:
    if unknown:
        raise ConfigError(
            f"{what} file {path} has {len(unknown)} unknown key(s): {_show(unknown, render)}; "
            "a key must be a class index (0-999 for ImageNet-1K) or a wnid such as 'n01440764'"
        )


def _check_claimed_wnid(key: object, wnid: object, expected: ClassLabel, path: Path) -> None:
    """imagenet_class_index.json repeats the wnid; a mismatch means the file is for another index."""
    if wnid is not None and wnid != expected.wnid:
        raise ConfigError(
            f"labels file {path}: key {key!r} says wnid {wnid!r} but class {expected.index} is "
            f"{expected.wnid} ({expected.label}); the file does not follow this model's class order"
        )


def _clean_name(name: object, label: ClassLabel, path: Path) -> str:
    if not isinstance(name, str):
        raise ConfigError(
            f"labels file {path}: the name for class {_describe(label)} is {_short(name)}, not text; "
            "give every class a name in quotes"
        )
    if not name.strip():
        raise ConfigError(
            f"labels file {path}: the name for class {_describe(label)} is empty; give every class a name"
        )
    return name.strip()


def _check_complete(names: dict[int, str], base: tuple[ClassLabel, ...], path: Path) -> None:
    missing = [_describe(c) for c in base if c.index not in names]
    if missing:
        raise ConfigError(
            f"labels file {path} is missing {len(missing)} of {len(base)} classes: {_show(missing, str)}; "
            "name every class (by index or wnid) so that no prediction is left without a label"
        )


# --- label groups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupScore:
    """One group's summed probability for one image."""

    name: str
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "score": self.score}


@dataclass(frozen=True, eq=False)
class LabelGroups:
    """Named sets of classes whose probabilities are summed.

    `members` is a boolean (groups, classes) matrix so scoring a batch is one matrix product; it is
    copied and made read-only, so a shared instance cannot be changed under a running service.
    """

    names: tuple[str, ...]
    members: np.ndarray

    def __post_init__(self) -> None:
        members = np.array(self.members, dtype=bool)
        if members.ndim != 2 or members.shape[0] != len(self.names):
            raise ValueError(f"members must be ({len(self.names)}, classes), got shape {members.shape}")
        members.setflags(write=False)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "members", members)

    def scores(self, probs: np.ndarray) -> list[list[GroupScore]]:
        """Per row of softmax probabilities (N, C): every group's summed probability, best first.

        Sums are taken in float64 and capped at 1, so a certain group reads 1.0 rather than
        1.0000001 from float32 rounding; ties are ordered by name so responses are stable.
        """
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != self.members.shape[1]:
            raise ValueError(f"probs must have shape (N, {self.members.shape[1]}), got {probs.shape}")
        sums = np.clip(probs @ self.members.T.astype(np.float64), 0.0, 1.0)
        return [self._ranked(row) for row in sums]

    def _ranked(self, row: np.ndarray) -> list[GroupScore]:
        order = sorted(range(len(self.names)), key=lambda g: (-row[g], self.names[g]))
        return [GroupScore(self.names[g], float(row[g])) for g in order]

    def describe(self) -> dict[str, list[int]]:
        """Group name -> class indices, for documentation and an API that lists the groups."""
        return {
            name: np.flatnonzero(row).tolist() for name, row in zip(self.names, self.members, strict=True)
        }


def _groups_from_indices(groups: dict[str, list[int]], num_classes: int) -> LabelGroups:
    members = np.zeros((len(groups), num_classes), dtype=bool)
    for row, indices in enumerate(groups.values()):
        members[row, indices] = True
    return LabelGroups(tuple(groups), members)


@cache
def _builtin_table() -> dict[str, tuple[str, ...]]:
    text = resources.files("recognizer.models").joinpath("label_groups.json").read_text("utf-8")
    return {name: tuple(wnids) for name, wnids in json.loads(text)["groups"].items()}


@cache
def builtin_groups(labels: tuple[ClassLabel, ...]) -> LabelGroups:
    """The shipped groups (dog, cat, bird, vehicle, ...), resolved against `labels` by wnid.

    By wnid rather than index so they follow a custom labels file, which keeps every wnid; cached
    because the result is immutable and every request of a service needs the same one.
    """
    by_wnid = _wnid_index(labels)
    table = _builtin_table()
    unknown = sorted({wnid for wnids in table.values() for wnid in wnids if wnid not in by_wnid})
    if unknown:
        raise ConfigError(
            f"the built-in label groups are for ImageNet-1K, but {len(unknown)} of their wnids are not "
            f"among this model's classes ({_show(unknown)}); give a label groups file for this label set"
        )
    return _groups_from_indices(
        {name: [by_wnid[w] for w in wnids] for name, wnids in table.items()}, len(labels)
    )


def load_groups(path: Path, labels: tuple[ClassLabel, ...]) -> LabelGroups:
    """A user's groups, which replace the built-in set entirely (so no unwanted group is reported).

    JSON ``{"group": [key, ...]}`` or CSV rows ``group,key`` (optional header); a key is a class
    index or a wnid, and a class may belong to several groups.
    """
    path = Path(path)
    text = _read_text(path, "label groups")
    if path.suffix.lower() == ".csv":
        groups = _csv_groups(text, path)
    else:
        groups = _json_groups(_parse_json(text, path, "label groups"), path)
    if not groups:
        raise ConfigError(f"label groups file {path} defines no groups; add at least one, e.g. dog")
    return _groups_from_indices(_resolve_groups(groups, labels, path), len(labels))


def _csv_groups(text: str, path: Path) -> dict[str, list[object]]:
    groups: dict[str, list[object]] = {}
    for line, name, key in _csv_rows(text, path, "label groups", "group,key"):
        groups.setdefault(_group_name(name, path, f"line {line}"), []).append(key)
    return groups


def _json_groups(data: object, path: Path) -> dict[str, list[object]]:
    if not isinstance(data, _Pairs):
        raise ConfigError(
            f"label groups file {path} holds a JSON {type(data).__name__}; use an object such as "
            '{"dog": [151, 152], "cat": ["n02123045"]}'
        )
    groups: dict[str, list[object]] = {}
    for raw_name, keys in data:
        name = _group_name(raw_name, path, "a key")
        if name in groups:
            raise ConfigError(f"label groups file {path} defines group {name!r} twice; merge the two lists")
        if not isinstance(keys, list) or not keys:
            raise ConfigError(
                f"label groups file {path}: group {name!r} is {_short(keys)}; give it a non-empty list of "
                "class indices or wnids"
            )
        groups[name] = keys
    return groups


def _group_name(name: str, path: Path, where: str) -> str:
    if not name.strip():
        raise ConfigError(
            f"label groups file {path} has a group with an empty name ({where}); name every group, "
            "e.g. 'dog' (letters, digits and _ are safest)"
        )
    return name.strip()


def _resolve_groups(
    groups: dict[str, list[object]], labels: tuple[ClassLabel, ...], path: Path
) -> dict[str, list[int]]:
    unknown = [
        f"{name}: {_short(key)}"
        for name, keys in groups.items()
        for key in keys
        if _class_index(key, labels) is None
    ]
    _check_unknown_keys(unknown, path, "label groups", str)
    return {name: _unique_members(name, keys, labels, path) for name, keys in groups.items()}


def _unique_members(name: str, keys: list[object], labels: tuple[ClassLabel, ...], path: Path) -> list[int]:
    seen: dict[int, object] = {}
    for key in keys:
        index = _class_index(key, labels)
        assert index is not None, "unknown keys are reported before members are collected"
        if index in seen:
            raise ConfigError(
                f"label groups file {path}: group {name!r} lists class {_describe(labels[index])} twice "
                f"(keys {seen[index]!r} and {key!r}); list each class once"
            )
        seen[index] = key
    return list(seen)

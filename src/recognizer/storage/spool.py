"""A local file that holds history rows while the database cannot take them.

When a write fails (PostgreSQL restarting, SQLite locked past its busy timeout, the network gone),
the batch is appended here and fsynced, so it survives the process; the writer replays it once
the database answers again. Each process appends only to its own file (``spool-<pid>.jsonl``); a
file left by a process that is no longer running is claimed by renaming it (atomic: one claimant
wins) and replayed too. Replaying twice is harmless: rows carry a unique id and the insert skips
ids already present.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from recognizer.interprocess import running

log = logging.getLogger("recognizer.history")

#: rows per INSERT when replaying
REPLAY_CHUNK = 500
_NAME = re.compile(r"spool-(\d+)(?:-\d+)?\.jsonl")


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid = os.getpid()
        self.path = directory / f"spool-{self.pid}.jsonl"
        self._adopted = 0

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Add rows durably: they are on disk when this returns."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(row, default=_encode, separators=(",", ":")) + "\n" for row in rows)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())

    def files(self) -> list[Path]:
        """This process's spool files, after claiming those of processes that have gone."""
        if not self.directory.is_dir():
            return []
        mine = []
        for path in sorted(self.directory.glob("spool-*.jsonl")):
            match = _NAME.fullmatch(path.name)
            if match is None:
                continue
            pid = int(match[1])
            if pid == self.pid:
                mine.append(path)
            elif not running(pid) and (claimed := self._claim(path)) is not None:
                mine.append(claimed)
        return mine

    def replay(self, insert: Callable[[list[dict[str, Any]]], None]) -> int:
        """Insert every spooled row, deleting each file once its rows are in; returns the row count.
        Raises what ``insert`` raises, leaving the files for the next try."""
        total = 0
        for path in self.files():
            rows = list(_read(path))
            for start in range(0, len(rows), REPLAY_CHUNK):
                insert(rows[start : start + REPLAY_CHUNK])
            path.unlink()
            total += len(rows)
            log.info("history: replayed %d spooled rows from %s", len(rows), path.name)
        return total

    def _claim(self, path: Path) -> Path | None:
        while True:  # an earlier process with this pid (a container restarted) may have left the name
            self._adopted += 1
            target = self.directory / f"spool-{self.pid}-{self._adopted}.jsonl"
            if not target.exists():  # only this process makes spool-<pid>-* names: no race
                break
        try:
            path.rename(target)
        except FileNotFoundError:  # another process claimed it first
            return None
        return target


def _read(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the process died mid-line: that row was never answered
                log.warning("history: skipping a torn line %d in %s", number, path.name)
                continue
            row["created_at"] = datetime.fromisoformat(row["created_at"])
            yield row


def _encode(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot spool {type(value).__name__}")

"""What processes sharing a data folder need of each other: is that process still running, and an
exclusive lock on a file that the kernel drops when its holder dies (``flock``), so a killed server
or job never leaves a lock behind."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


def running(pid: int) -> bool:
    """Is process ``pid`` alive on this host (someone else's counts as alive)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def try_lock(path: Path, create: bool = False) -> IO[bytes] | None:
    """``path`` opened and exclusively locked until the handle is closed, or None if it is missing
    (and not ``create``) or another process holds it."""
    try:
        handle = open(path, "ab" if create else "rb")  # noqa: SIM115  # held by the caller
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle

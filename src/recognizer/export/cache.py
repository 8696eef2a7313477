"""The artifact cache: keyed folders with a manifest, published by atomic rename."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def build_once(folder: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """Return ``folder``, calling ``build(tmp_dir) -> manifest`` first if it is not complete yet.

    A folder counts as complete only when its manifest is readable; the manifest is written last
    and the folder renamed into place, so a crash mid-build leaves nothing behind.
    """
    if read_manifest(folder) is not None:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        manifest = build(staging)
        manifest["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), "utf-8")
        if folder.exists():  # stale folder without a manifest, from an interrupted build
            shutil.rmtree(folder, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:
            if read_manifest(folder) is None:  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder

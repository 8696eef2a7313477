"""Pixels kept with history rows (RECOGNIZER_HISTORY_IMAGES=thumbnail|full), content-addressed.

A file is named by the input's SHA-256 and nothing else, never by a name a client gave, so the
same photo sent a hundred times is stored once, and no request can choose where a file lands.
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

from PIL import Image

#: longest side of a stored thumbnail, in pixels
THUMBNAIL_SIZE = 256
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: what a stored original may be served as, by Pillow's format name
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
SUFFIXES = {"thumbnail": ".jpg", "full": ".img"}


class ImageStore:
    """``root/ab/abcdef....jpg`` (thumbnails) and ``root/ab/abcdef....img`` (originals)."""

    def __init__(self, root: Path, mode: str) -> None:
        self.root, self.mode = root, mode

    def path(self, sha256: str, kind: str) -> Path:
        if not _SHA256.fullmatch(sha256) or kind not in SUFFIXES:
            raise ValueError(f"not a stored image key: {sha256!r}/{kind!r}")
        return self.root / sha256[:2] / f"{sha256}{SUFFIXES[kind]}"

    def store(self, sha256: str, data: bytes) -> str:
        """Keep ``data`` as this store's mode asks; returns the kind stored ("thumbnail" or "full")."""
        path = self.path(sha256, self.mode)
        if not path.exists():
            _write_atomically(path, data if self.mode == "full" else thumbnail(data))
        return self.mode

    def delete(self, sha256: str) -> None:
        for kind in SUFFIXES:
            self.path(sha256, kind).unlink(missing_ok=True)


def thumbnail(data: bytes) -> bytes:
    """A JPEG whose longer side is at most THUMBNAIL_SIZE (JPEG draft mode keeps this cheap)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


def media_type(path: Path) -> str:
    """The served type of a stored file: thumbnails are JPEG; originals are sniffed, never trusted."""
    if path.suffix == SUFFIXES["thumbnail"]:
        return "image/jpeg"
    try:
        with Image.open(path) as image:
            return MEDIA_TYPES.get(image.format or "", "application/octet-stream")
    except Exception:
        return "application/octet-stream"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""What a job submitted over HTTP may read, checked before it is queued and again each time it
starts: a folder must resolve (symlinks followed) inside ``RECOGNIZER_JOB_ROOTS``, and so must
every file in it; a zip must be a readable zip of images whose entries are few enough, unencrypted
and not a bomb. Each refusal is an error from :mod:`recognizer.errors` that says what to send
instead.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from recognizer.config import Settings
from recognizer.errors import (
    BadArchiveError,
    FeatureUnavailableError,
    NotFoundError,
    PathNotAllowedError,
    RequestError,
)
from recognizer.imaging import IMAGE_SUFFIXES
from recognizer.jobs import inputs

#: images barely compress, so a zip that unpacks to this many times its size is a bomb...
BOMB_RATIO = 20
#: ...once it unpacks to more than this at all (a zip of uncompressed BMPs may well shrink 20-fold)
BOMB_FLOOR_BYTES = 64 * 1024 * 1024
#: compression methods the zipfile module reads (others would fail every member)
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def allowed_folder(given: str, settings: Settings) -> Path:
    """``given`` (absolute, or relative to a root) as a real folder inside one of the roots."""
    roots = settings.jobs.root_paths
    if not roots:
        raise FeatureUnavailableError(
            "folder jobs are off on this server: its operator lists the folders jobs may read in "
            "RECOGNIZER_JOB_ROOTS; upload a zip instead"
        )
    if "\x00" in given:
        raise RequestError("the folder name holds a NUL character")
    path = Path(given)
    candidates = [path] if path.is_absolute() else [root / path for root in roots]
    inside = [real for real in map(_real, candidates) if _within(real, roots)]
    if not inside:
        raise PathNotAllowedError(
            f"{given!r} is outside the folders this server lets jobs read (RECOGNIZER_JOB_ROOTS)",
            public=f"{given!r} is outside the folders this server lets jobs read",
        )
    found = next((real for real in inside if real.is_dir()), None)
    if found is None:
        raise NotFoundError(f"no folder {given!r} under the folders this server lets jobs read")
    return found


def folder_sources(folder: Path, settings: Settings) -> list[inputs.Source]:
    """The folder's images, each of which must lie inside the roots too (a symlink may point out)."""
    sources = inputs.resolve([str(folder)])
    roots, files = settings.jobs.root_paths, sources[0].files
    for path in files:
        if not _within(_real(path), roots):
            shown = path.relative_to(folder)
            message = f"{shown} links outside the folders this server lets jobs read"
            raise PathNotAllowedError(f"{folder}/{message}", public=message)
    if not files:
        raise RequestError("the folder holds no images (.jpg, .png, .webp, ...)")
    if len(files) > settings.jobs.max_inputs:
        raise RequestError(
            f"the folder holds {len(files):,} images; a job takes at most "
            f"{settings.jobs.max_inputs:,} (RECOGNIZER_JOB_MAX_INPUTS): split it into subfolders"
        )
    return sources


def check_zip(path: Path, settings: Settings) -> int:
    """The number of images in an uploaded zip, or why it cannot be a job's input."""
    size = path.stat().st_size
    if size == 0:
        raise BadArchiveError("the upload is empty: send a .zip of images")
    _require_few_entries(path, settings.jobs.max_inputs)
    try:
        with zipfile.ZipFile(path) as zipped:
            members = [i for i in zipped.infolist() if Path(i.filename).suffix.lower() in IMAGE_SUFFIXES]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadArchiveError(f"the upload is not a readable zip ({exc})") from None
    _require_readable(members)
    _require_no_bomb(members, size, settings.limits.max_image_bytes)
    total = inputs.count(inputs.resolve([str(path)]))
    if total == 0:
        raise BadArchiveError("the zip holds no images (.jpg, .png, .webp, ...)")
    return total


def _require_few_entries(path: Path, limit: int) -> None:
    """Counted from the end record alone: a million-entry directory is refused before it is parsed."""
    with path.open("rb") as handle:
        record = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # stable since Python 2
    if record is None:
        raise BadArchiveError(
            "the upload is not a zip file, or was cut short (no zip directory at its end): "
            "send a whole .zip of images"
        )
    entries = record[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
    if entries > limit:
        raise BadArchiveError(
            f"the zip holds {entries:,} entries; a job takes at most {limit:,} (RECOGNIZER_JOB_MAX_INPUTS)"
        )


def _require_readable(members: list[zipfile.ZipInfo]) -> None:
    for info in members:
        if info.flag_bits & 0x1:
            raise BadArchiveError(
                f"{info.filename} in the zip is encrypted: zip the images without a password"
            )
        if info.compress_type not in ZIP_METHODS:
            raise BadArchiveError(
                f"{info.filename} in the zip uses compression method {info.compress_type}, which this "
                "server cannot read: zip with deflate (the usual) or store"
            )


def _require_no_bomb(members: list[zipfile.ZipInfo], size: int, max_image_bytes: int) -> None:
    """Members over the image limit are refused from their declared size without being unpacked,
    and a member that unpacks past its declared size fails its CRC check: so the declared sizes
    bound the work, and they are what is checked."""
    unpacked = sum(info.file_size for info in members if info.file_size <= max_image_bytes)
    if unpacked > BOMB_FLOOR_BYTES and unpacked > BOMB_RATIO * size:
        raise BadArchiveError(
            f"the zip's images would unpack to {unpacked:,} bytes from {size:,} ({unpacked // size}:1); "
            f"images barely compress, so over {BOMB_RATIO}:1 is refused as a zip bomb"
        )


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _within(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)

"""What a folder job reads: folders (recursively), files, globs and .zip/.tar archives, as one
ordered stream of named inputs.

The order is fixed (sources as given, folders and globs sorted, archives in their own order), so
an interrupted job run again sees the same inputs in the same order and its output equals an
uninterrupted run's. Inputs are read one at a time as the job consumes them: a 10,000-image folder
or archive is never held in memory, and a file over the byte limit is refused from its size
without being read.
"""

from __future__ import annotations

import glob
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recognizer.errors import ConfigError, ImageError, ImageTooLargeError, UnreadableFileError
from recognizer.imaging import IMAGE_SUFFIXES, find_images

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
#: what reading one zip member can raise: the member is an error row, the job goes on
_MEMBER_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)
#: separates an archive's path from a member's in an input's name: ``photos.zip!cats/1.jpg``
MEMBER_SEPARATOR = "!"


@dataclass
class Input:
    """One named input: its bytes, or the error that stopped reading them (a row of its own)."""

    name: str
    data: bytes = b""
    error: ImageError | None = None


@dataclass(frozen=True)
class Source:
    """One SRC argument, resolved: a list of files, or one archive."""

    given: str
    files: tuple[Path, ...] = ()
    archive: Path | None = None


def resolve(sources: list[str] | tuple[str, ...]) -> list[Source]:
    """Check every SRC before the job starts: a missing one is a usage error, not a row."""
    resolved = [_resolve_one(given) for given in sources]
    if not resolved:
        raise ConfigError("no inputs: give folders, files, globs or .zip/.tar archives")
    return resolved


def _resolve_one(given: str) -> Source:
    path = Path(given).expanduser()
    if path.is_dir():
        return Source(given, tuple(find_images(path)))
    if path.is_file():
        return Source(given, archive=path) if is_archive(path) else Source(given, (path,))
    if glob.has_magic(given):
        matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(given), recursive=True))
        files = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if files:
            return Source(given, tuple(files))
        raise ConfigError(f"{given}: no image files match this pattern")
    raise ConfigError(f"{given}: no such file or folder")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def count(sources: list[Source]) -> int:
    """How many inputs the job will see (archives are listed, not read)."""
    return sum(len(s.files) if s.archive is None else len(_member_names(s.archive)) for s in sources)


def read(sources: list[Source], max_bytes: int) -> Iterator[Input]:
    """Every input in order, each read only when the consumer asks for it."""
    for source in sources:
        if source.archive is None:
            for path in source.files:
                yield read_file(path, str(path), max_bytes)
        else:
            yield from _read_archive(source.archive, max_bytes)


def read_file(path: Path, name: str, max_bytes: int) -> Input:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Input(name, error=_too_big(size, max_bytes))
        return Input(name, path.read_bytes())
    except OSError as exc:
        return Input(name, error=UnreadableFileError(f"cannot read the file ({exc.strerror or exc})"))


def _too_big(size: int, max_bytes: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (RECOGNIZER_MAX_IMAGE_BYTES)"
    )


def _member_names(archive: Path) -> list[str]:
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                return [i.filename for i in zipped.infolist() if _is_image_member(i.filename, i.is_dir())]
        with tarfile.open(archive) as tarred:
            return [m.name for m in tarred if m.isfile() and _is_image_member(m.name, False)]
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise ConfigError(f"{archive}: not a readable archive ({exc})") from None


def _is_image_member(name: str, is_dir: bool) -> bool:
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in Path(name).parts)
    return not is_dir and not hidden and Path(name).suffix.lower() in IMAGE_SUFFIXES


def _read_archive(archive: Path, max_bytes: int) -> Iterator[Input]:
    """Members in the archive's own order (a compressed tar cannot seek, and its order is as fixed
    as a sorted one), image members only."""
    prefix = f"{archive}{MEMBER_SEPARATOR}"
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            for name in _member_names(archive):
                yield _zip_member(zipped, name, prefix + name, max_bytes)
        return
    try:
        with tarfile.open(archive) as tarred:
            for member in tarred:
                if member.isfile() and _is_image_member(member.name, False):
                    item = _tar_member(tarred, member, prefix, max_bytes)
                    yield item
                    if isinstance(item.error, UnreadableFileError):
                        return  # the stream broke inside this member: nothing after it is readable
    except (OSError, tarfile.TarError) as exc:  # truncated mid-way: what was read stands
        yield Input(str(archive), error=UnreadableFileError(f"the archive ends early or is damaged ({exc})"))


def _zip_member(zipped: zipfile.ZipFile, member: str, name: str, max_bytes: int) -> Input:
    info = zipped.getinfo(member)
    if info.file_size > max_bytes:
        return Input(name, error=_too_big(info.file_size, max_bytes))
    try:
        return Input(name, zipped.read(member))
    except _MEMBER_ERRORS as exc:  # damaged, encrypted (RuntimeError), unknown method, cut short
        return Input(name, error=UnreadableFileError(f"cannot read this archive member ({exc})"))


def _tar_member(tarred: tarfile.TarFile, member: tarfile.TarInfo, prefix: str, max_bytes: int) -> Input:
    name = prefix + member.name
    if member.size > max_bytes:
        return Input(name, error=_too_big(member.size, max_bytes))
    try:
        handle = tarred.extractfile(member)
        return Input(name, handle.read() if handle else b"")
    except (OSError, tarfile.TarError) as exc:
        return Input(name, error=UnreadableFileError(f"cannot read this archive member ({exc})"))

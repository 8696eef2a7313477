"""What a user may name as a stream, checked before anything connects, and shown without secrets.

A source is a video file, an ``rtsp(s)://``, ``http(s)://`` (MJPEG, HLS, MPEG-TS) or ``tcp://`` URL, or
a local camera (``/dev/video0``, or its index ``0``). Everything else is refused here with one line
naming what is accepted, so that a typo never becomes a stream that reconnects forever. URLs may
carry credentials (``rtsp://user:pass@camera/...``): :func:`redact` is what logs, events and API
answers show instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from recognizer.errors import BadSourceError

SourceKind = Literal["file", "rtsp", "http", "tcp", "device"]
_SCHEMES: dict[str, SourceKind] = {
    "rtsp": "rtsp",
    "rtsps": "rtsp",
    "http": "http",
    "https": "http",
    "tcp": "tcp",
}
#: user info runs to the authority's last "@" (FFmpeg splits there, so "p@ss" is one password)
_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s]*@", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"(?P<key>(?:password|passwd|pass|pwd|token|key|secret|auth)=)[^&\s]*", re.IGNORECASE
)
ACCEPTED = "a video file, rtsp://, http(s)://, tcp:// or a camera (/dev/video0 or its index)"


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    #: what FFmpeg opens (may hold credentials: never log it)
    target: str = field(repr=False)
    #: the same with credentials replaced by ***: for logs, events and API answers
    display: str
    #: FFmpeg's input format, where the name alone does not say (v4l2 for a camera)
    format: str | None = None

    @property
    def live(self) -> bool:
        """A live source reconnects when it drops; a file ends."""
        return self.kind != "file"

    def options(self) -> dict[str, str]:
        """FFmpeg options per kind: RTSP over TCP (no lost UDP packets on a busy host). No
        ``nobuffer``: it throws away what probing read; the newest-frame slot keeps frames fresh."""
        if self.kind == "rtsp":
            return {"rtsp_transport": "tcp"}
        return {}


def parse_source(text: str, *, check_file: bool = True) -> Source:
    """``text`` as a :class:`Source`, or a :class:`BadSourceError` saying what is accepted."""
    text = text.strip()
    if not text:
        raise BadSourceError(f"give a stream source: {ACCEPTED}")
    if not text.isprintable() or not _encodable(text):
        raise BadSourceError("a stream source must be printable text (no control characters)")
    try:
        return _parse(text, check_file)
    except ValueError as exc:  # urlsplit's own refusals (a broken IPv6 host, a bad port)
        raise BadSourceError(f"not a usable stream URL ({exc}); use {ACCEPTED}") from None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a JSON body
        return False
    return True


def _parse(text: str, check_file: bool) -> Source:
    if text.isdigit():
        return _device(f"/dev/video{int(text)}", check_file)
    if text.startswith("/dev/video"):
        return _device(text, check_file)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in _SCHEMES:
        if not urlsplit(text).hostname:
            raise BadSourceError(f"stream URL {redact(text)} names no host")
        urlsplit(text).port  # noqa: B018 (raises ValueError for a port that is not a number)
        return Source(_SCHEMES[scheme], text, redact(text))
    if scheme and scheme != "file":
        raise BadSourceError(f"unknown stream URL scheme {scheme}://; use {ACCEPTED}")
    path = Path(unquote(urlsplit(text).path) if scheme == "file" else text).expanduser()
    if check_file and not path.is_file():
        raise BadSourceError(f"no such video file: {path}", public="no such video file")
    return Source("file", str(path), str(path))


def _device(path: str, check: bool) -> Source:
    if check and not Path(path).exists():
        raise BadSourceError(f"no camera at {path}; list them with `ls /dev/video*`")
    return Source("device", path, path, format="v4l2")


def redact(text: str) -> str:
    """``rtsp://user:pass@host/x?token=abc`` -> ``rtsp://***@host/x?token=***``; also inside messages."""
    text = _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}***", text)

"""A job's zip, from the request to a file on disk as it arrives: never whole in memory, never in
a temporary folder first, never under a name the client chose.

Two ways to send it: multipart/form-data with the zip in a field named ``file`` (what ``curl -F``
and browsers send), or the zip itself as the body (``application/zip``). The body's size limit is
the guard middleware's (RECOGNIZER_JOB_MAX_UPLOAD_BYTES), enforced while the body streams in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from recognizer.errors import RequestError, RequestTooLargeError, UnsupportedMediaError

ZIP_TYPES = (b"application/zip", b"application/x-zip-compressed", b"application/octet-stream")
#: bytes gathered before one write on a worker thread
WRITE_EVERY = 1024 * 1024
#: a JSON body only names a folder
MAX_JSON_BYTES = 64 * 1024


def is_json(request: Request) -> bool:
    kind, _ = parse_options_header(request.headers.get("content-type", ""))
    return kind == b"application/json"


async def read_json(request: Request) -> Any:
    """A small JSON body (the folder job's), refused past :data:`MAX_JSON_BYTES`."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise RequestTooLargeError(f"a JSON job body is at most {MAX_JSON_BYTES:,} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise RequestError('the body is not JSON: send {"folder": "name/under/a/root"}') from None


async def receive_zip(request: Request, target: Path, limit: int) -> str:
    """Write the request's zip, at most ``limit`` bytes, to ``target``; the client's name for it
    (for display only)."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise RequestError("the multipart body names no boundary")
        return await _multipart(request, target, boundary, limit)
    if kind in ZIP_TYPES:
        await _save(_raw(request), target, limit)
        return "upload.zip"
    raise UnsupportedMediaError(
        f"content type {kind.decode('latin-1') or 'missing'!r} is not accepted: send multipart/form-data "
        "with the zip in a field named 'file', the zip itself as application/zip, or "
        'application/json with {"folder": ...}'
    )


async def _raw(request: Request) -> AsyncIterator[list[bytes]]:
    async for chunk in request.stream():
        yield [chunk]


class _FilePart:
    """python-multipart callbacks that keep the ``file`` field's bytes and name, and drop the rest."""

    def __init__(self) -> None:
        self.header, self.value = b"", b""
        self.disposition = b""
        self.in_file, self.files = False, 0
        self.filename = "upload.zip"
        self.chunks: list[bytes] = []

    def callbacks(self) -> dict[str, Any]:
        names = ("part_begin", "header_field", "header_value", "header_end", "headers_finished")
        return {f"on_{name}": getattr(self, name) for name in (*names, "part_data", "part_end")}

    def part_begin(self) -> None:
        self.disposition = b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        if self.header.lower() == b"content-disposition":
            self.disposition = self.value
        self.header, self.value = b"", b""

    def headers_finished(self) -> None:
        _, params = parse_options_header(self.disposition)
        self.in_file = params.get(b"name") == b"file"
        if self.in_file:
            self.files += 1
            if self.files > 1:
                raise RequestError("send one zip per job (one 'file' field)")
            self.filename = params.get(b"filename", b"upload.zip").decode("utf-8", "replace")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.chunks.append(data[start:end])

    def part_end(self) -> None:
        self.in_file = False

    def take(self) -> list[bytes]:
        taken, self.chunks = self.chunks, []
        return taken


async def _multipart(request: Request, target: Path, boundary: bytes, limit: int) -> str:
    part = _FilePart()
    parser = MultipartParser(boundary, part.callbacks())

    async def parsed() -> AsyncIterator[list[bytes]]:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                yield part.take()
            parser.finalize()
        except FormParserError as exc:
            raise RequestError(f"the multipart body is malformed ({exc})") from None
        yield part.take()

    await _save(parsed(), target, limit)
    if not part.files:
        raise RequestError("no zip: send it in a multipart field named 'file'")
    return part.filename


async def _save(pieces: AsyncIterator[list[bytes]], target: Path, limit: int) -> None:
    """Write the pieces to ``target``, a megabyte at a time on a worker thread."""
    handle: IO[bytes] = await asyncio.to_thread(target.open, "wb")
    try:
        pending: list[bytes] = []
        size = total = 0
        async for chunks in pieces:
            pending += chunks
            size += sum(map(len, chunks))
            total += sum(map(len, chunks))
            if total > limit:
                raise RequestTooLargeError(
                    f"the zip is over the {limit:,}-byte limit (RECOGNIZER_JOB_MAX_UPLOAD_BYTES)"
                )
            if size >= WRITE_EVERY:
                await asyncio.to_thread(handle.writelines, pending)
                pending, size = [], 0
        await asyncio.to_thread(handle.writelines, pending)
    finally:
        await asyncio.to_thread(handle.close)

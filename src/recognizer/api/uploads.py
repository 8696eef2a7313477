"""Read image bytes from a request: multipart field(s) or a raw image body, with a size cap.

Bytes stay in memory or in anonymous temporary files; nothing is ever written under a
client-supplied name.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile

from recognizer.errors import ImageTooLargeError, RequestError, UnsupportedMediaError

RAW_TYPES = ("image/", "application/octet-stream")


async def read_uploads(request: Request, max_bytes: int, max_files: int = 1) -> list[tuple[str, bytes]]:
    """``[(name, bytes)]`` from multipart fields ``file`` (or ``files``), or one raw image body."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return await _multipart(request, max_bytes, max_files)
    if content_type.startswith(RAW_TYPES):
        return [("upload", await _raw_body(request, max_bytes))]
    raise UnsupportedMediaError(
        f"content type {content_type or 'missing'!r} is not accepted; send multipart/form-data with a "
        f"'file' field, or the image itself with an image/* content type"
    )


async def _multipart(request: Request, max_bytes: int, max_files: int) -> list[tuple[str, bytes]]:
    # The context manager closes the spooled temporary files the parser created.
    async with request.form(max_files=max_files, max_fields=16) as form:
        uploads = [item for key in ("file", "files") for item in form.getlist(key)]
        if not uploads:
            raise RequestError("no image: send it in a multipart field named 'file'")
        if not all(isinstance(item, UploadFile) for item in uploads):
            raise RequestError("the 'file' field must be a file upload, not text")
        return [(item.filename or "upload", await item.read(max_bytes + 1)) for item in uploads]  # type: ignore[union-attr]


async def _raw_body(request: Request, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ImageTooLargeError(f"the image is over the {max_bytes / 1e6:.1f} MB limit")
        chunks.append(chunk)
    return b"".join(chunks)

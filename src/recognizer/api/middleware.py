"""Request guard and metrics, as plain ASGI middleware.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every
request through an extra task and memory stream, which costs measurable throughput on a
service whose requests take a few milliseconds.

The guard refuses what no route should have to look at: header blocks over a size or count
(431), bodies declared over their route's limit (413 before a byte is read), and bodies that
stream past it (413 as soon as they do, chunked ones too). ``HEAD`` is answered as ``GET``
without the body. Every request, refused ones included, is counted and timed.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recognizer.api import problems
from recognizer.api.limits import BodyLimits
from recognizer.errors import RequestTooLargeError
from recognizer.observability.metrics import Metrics

MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


class GuardAndMeasure:
    def __init__(self, app: ASGIApp, limits: BodyLimits, metrics: Metrics) -> None:
        self.app, self.limits, self.metrics = app, limits, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            json_tensors = _json_tensors(scope)
            limit = self.limits.for_path(scope["path"], binary_tensors=not json_tensors)
            refusal = _refusal(scope, limit, json_tensors)
            if refusal is not None:
                await refusal(scope, receive, send_and_note_status)
                return
            if scope["method"] == "HEAD":
                scope, send_and_note_status = {**scope, "method": "GET"}, _without_body(send_and_note_status)
            await self.app(scope, _bounded(receive, limit, scope["path"], json_tensors), send_and_note_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")  # the router fills in "route"
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.request_seconds.labels(path).observe(time.perf_counter() - start)


def _json_tensors(scope: Scope) -> bool:
    """An Open Inference Protocol body without the binary extension's header: all JSON."""
    if not scope["path"].startswith("/v2/"):
        return False
    return not any(name == b"inference-header-content-length" for name, _ in scope["headers"])


def _refusal(scope: Scope, limit: int, json_tensors: bool) -> ASGIApp | None:
    headers = scope["headers"]
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES or len(headers) > MAX_HEADERS:
        detail = (
            f"the request has {len(headers)} header fields, {size} bytes; the limits are "
            f"{MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes"
        )
        return problems.problem(431, "headers_too_large", detail, scope["path"])
    declared = next((value for name, value in headers if name == b"content-length"), b"")
    if declared.isdigit() and int(declared) > limit:
        limit_text = _limit_text(scope["path"], limit, json_tensors)
        detail = f"the request body declares {int(declared):,} bytes; {limit_text}"
        return problems.problem(413, "request_too_large", detail, scope["path"], headers=CLOSE)
    return None


#: after a refused body the connection is closed: otherwise the server would go on reading (and
#: discarding) whatever a hostile client keeps sending on a kept-alive connection
CLOSE = {"Connection": "close"}


def _limit_text(path: str, limit: int, json_tensors: bool) -> str:
    advice = "; send larger tensors with the binary tensor data extension" if json_tensors else ""
    return f"{path} accepts at most {limit:,} bytes{advice}"


def _bounded(receive: Receive, limit: int, path: str, json_tensors: bool) -> Receive:
    """``receive`` that raises RequestTooLargeError (413) once the body passes ``limit`` bytes."""
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                limit_text = _limit_text(path, limit, json_tensors)
                raise RequestTooLargeError(f"the request body is too large: {limit_text}")
        return message

    return bounded


def _without_body(send: Send) -> Send:
    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {
                "type": "http.response.body",
                "body": b"",
                "more_body": message.get("more_body", False),
            }
        await send(message)

    return send_headers_only

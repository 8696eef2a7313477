"""Webcam mode: a browser's camera frames over one WebSocket, ``WS /v1/streams/webcam``.

Protocol. The client sends one binary message per frame (the JPEG, PNG or WebP bytes); the server
answers each frame it recognizes with one JSON text message::

    {"frame": 7, "dropped": 2, "model": ..., "engine": ..., "id": ...,
     "predictions": [{"index", "wnid", "label", "score"}], "groups": [{"name", "score"}],
     "timing_ms": {"decode", "infer", "total"}}

or, for a frame that cannot be recognized (not an image, rate limited, model still loading),
``{"frame": 7, "dropped": 2, "error": {problem+json: type, title, status, detail, code}}``; the
socket stays open. ``frame`` numbers every message received, from 1. Newest frame wins: frames
that arrive while one is being recognized wait in a single slot, a newer one replacing an older
one (counted in ``dropped``), so a client that sends faster than the server answers gets answers
about its latest picture, not a growing backlog. Frames go through :meth:`Pipeline.recognize`
(``source="webcam"``): the same micro-batcher, the same model copy as ``POST /v1/classify``.

Credentials are those of the HTTP routes: the page's session cookie, ``Authorization`` or
``X-API-Key`` headers, or, since browsers cannot set headers on a WebSocket, the API key as a
subprotocol ``bearer.<key>`` offered next to ``recognizer``
(``new WebSocket(url, ["recognizer", "bearer." + key])``). The server answers with ``recognizer``,
never echoing the key, and the key never appears in a URL, so it stays out of access logs. The
scope is ``classify`` (each frame is one classification, charged to its rate limit like an
upload), not ``streams`` (server-side sources that run on their own). A connection relying on
ambient credentials (cookie, or an open server) must come from the page's own origin or one of
RECOGNIZER_CORS_ORIGINS: cookies ride along on cross-site WebSocket handshakes, CSRF tokens don't.

Closing codes: 1008 when the credentials or the origin are refused (after one error message that
says why), 1009 for a frame over RECOGNIZER_MAX_IMAGE_BYTES (after an error message too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, WebSocket
from starlette.status import WS_1008_POLICY_VIOLATION, WS_1009_MESSAGE_TOO_BIG
from starlette.websockets import WebSocketDisconnect

from recognizer.api.guard import Access, limit
from recognizer.api.problems import error_body, status_for
from recognizer.api.routes_v1 import Groups, ModelName, TopK
from recognizer.auth.principal import Principal
from recognizer.config import Settings
from recognizer.errors import (
    AuthenticationError,
    AuthError,
    EngineError,
    PermissionDeniedError,
    RecognizerError,
    RequestTooLargeError,
    UnsupportedMediaError,
)
from recognizer.inference.pipeline import Options, Pipeline
from recognizer.inference.results import Recognition

log = logging.getLogger("recognizer.api")

PATH = "/v1/streams/webcam"
SCOPE = "classify"
SOURCE = "webcam"
#: the subprotocol the server speaks; a client that offers subprotocols must offer this one
SUBPROTOCOL = "recognizer"
#: an offered subprotocol ``bearer.<API key>`` carries the key (browsers cannot set headers)
KEY_PROTOCOL = "bearer."
#: a WebSocket close reason is at most 123 bytes of UTF-8
MAX_REASON_BYTES = 123


def install(app: FastAPI) -> None:
    """Add the route to ``app`` itself, not through ``include_router``: an included router's
    WebSocket route shows up in :func:`recognizer.api.route_table.endpoints` without a path regex
    or dependant, which that module's users (405 ``Allow``, the authorization test) cannot read."""
    app.add_api_websocket_route(PATH, webcam, name="webcam")


async def webcam(
    websocket: WebSocket, top_k: TopK = None, model: ModelName = None, groups: Groups = None
) -> None:
    """Recognize camera frames: one binary message in, one JSON message out (module docstring)."""
    principal = await _admit(websocket)
    if principal is not None:
        await WebcamSession(websocket, principal, Options(top_k=top_k, groups=groups), model).run()


# -- who may connect ----------------------------------------------------------------------------


async def _admit(websocket: WebSocket) -> Principal | None:
    """Accept the connection; the principal, or None after refusing it with 1008."""
    try:
        principal = _authenticate(websocket)
    except AuthError as exc:
        await websocket.accept(subprotocol=_chosen_protocol(websocket))
        await websocket.send_json({"frame": None, "error": error_body(exc, PATH)})
        await websocket.close(WS_1008_POLICY_VIOLATION, reason=_reason(exc))
        log.info("webcam connection refused: %s", exc)
        return None
    await websocket.accept(subprotocol=_chosen_protocol(websocket))
    return principal


def _authenticate(websocket: WebSocket) -> Principal:
    access: Access = websocket.app.state.access
    token = _offered_key(websocket)
    if token is not None:
        found = access.keys.verify(token) if access.keys is not None else None
        if found is None:
            raise AuthenticationError("the API key is not valid (wrong, revoked or expired)")
        principal = found
    else:  # headers, the session cookie, or anonymous on an open server: as on HTTP routes
        principal = access.principal(websocket)  # type: ignore[arg-type]  # an HTTPConnection suffices
    if principal.kind != "key" and not _allowed_origin(websocket, websocket.app.state.settings):
        raise PermissionDeniedError(
            f"connections from {websocket.headers.get('origin')} are not allowed: open the page of "
            "this server, or list that origin in RECOGNIZER_CORS_ORIGINS"
        )
    if SCOPE not in principal.scopes:
        raise PermissionDeniedError(
            f"{principal.client} may not use webcam mode: it needs the {SCOPE!r} scope"
        )
    return principal


def _offered_protocols(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [item.strip() for item in header.split(",") if item.strip()]


def _offered_key(websocket: WebSocket) -> str | None:
    keys = [p.removeprefix(KEY_PROTOCOL) for p in _offered_protocols(websocket) if p.startswith(KEY_PROTOCOL)]
    return keys[0] if keys else None


def _chosen_protocol(websocket: WebSocket) -> str | None:
    return SUBPROTOCOL if SUBPROTOCOL in _offered_protocols(websocket) else None


def _allowed_origin(websocket: WebSocket, settings: Settings) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser: nothing ambient was sent on its behalf
        return True
    allowed = {item.strip() for item in settings.auth.cors_origins.split(",") if item.strip()}
    return origin in allowed or urlsplit(origin).netloc == websocket.headers.get("host", "")


def _reason(exc: RecognizerError) -> str:
    text = str(error_body(exc)["detail"])
    encoded = text.encode()
    if len(encoded) <= MAX_REASON_BYTES:
        return text
    return encoded[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


# -- one connection ------------------------------------------------------------------------------


@dataclass
class Frame:
    number: int
    data: bytes | None
    #: set instead of ``data`` for a message that is no frame at all
    error: RecognizerError | None = None


class NewestFrame:
    """One waiting frame: a newer one replaces it unanswered, and counts as dropped."""

    def __init__(self) -> None:
        self.received = 0
        self.dropped = 0
        self._frame: Frame | None = None
        self._ready = asyncio.Event()

    def put(self, data: bytes | None, error: RecognizerError | None = None) -> int:
        self.received += 1
        if self._frame is not None:
            self.dropped += 1
        self._frame = Frame(self.received, data, error)
        self._ready.set()
        return self.received

    async def take(self) -> Frame:
        await self._ready.wait()
        self._ready.clear()
        frame, self._frame = self._frame, None
        assert frame is not None
        return frame


class WebcamSession:
    """Reads frames into :class:`NewestFrame` and answers them one at a time, until either side ends."""

    def __init__(
        self, websocket: WebSocket, principal: Principal, options: Options, model: str | None
    ) -> None:
        self.websocket, self.principal, self.options, self.model = websocket, principal, options, model
        self.app = websocket.app
        self.pipeline: Pipeline = self.app.state.pipeline
        self.max_bytes: int = self.app.state.settings.limits.max_image_bytes
        self.frames = NewestFrame()
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._answer())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await task

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                self.frames.put(None, UnsupportedMediaError("send each frame as one binary message"))
            elif len(data) > self.max_bytes:
                await self._refuse_oversized(len(data))
                return
            else:
                self.frames.put(data)

    async def _refuse_oversized(self, size: int) -> None:
        exc = RequestTooLargeError(f"a frame of {size:,} bytes is over the limit of {self.max_bytes:,} bytes")
        self.frames.received += 1  # numbered, never queued: the socket closes after this answer
        number = self.frames.received
        await self._send({"frame": number, "dropped": self.frames.dropped, "error": error_body(exc, PATH)})
        await self.websocket.close(WS_1009_MESSAGE_TOO_BIG, reason=_reason(exc))

    async def _answer(self) -> None:
        while True:
            frame = await self.frames.take()
            reply = await self._recognize(frame)
            await self._send({"frame": frame.number, "dropped": self.frames.dropped, **reply})

    async def _recognize(self, frame: Frame) -> dict[str, Any]:
        try:
            if frame.error is not None:
                raise frame.error
            access: Access = self.app.state.access
            who = self.principal
            await limit(access.limiter, who.client, SCOPE, 1, who.rate_limit)  # a frame costs one
            assert frame.data is not None
            result = await self.pipeline.recognize(
                frame.data,
                model=self.model,
                options=self.options,
                source=SOURCE,
                name=f"frame-{frame.number}",
                client=who.client,
            )
        except RecognizerError as exc:
            return {"error": _frame_error(exc)}
        except Exception as exc:  # a model that failed to start, say: this frame fails, not the socket
            log.exception("webcam frame %d failed unexpectedly", frame.number)
            return {"error": _frame_error(EngineError(f"recognition failed ({type(exc).__name__})"))}
        return _answer_body(result)

    async def _send(self, body: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_json(body)


def _frame_error(exc: RecognizerError) -> dict[str, object]:
    if status_for(exc) >= 500:
        log.error("webcam frame: %s", exc)
    return error_body(exc, PATH)


def _answer_body(result: Recognition) -> dict[str, Any]:
    return {
        "id": result.id,
        "model": result.model,
        "engine": result.engine,
        "predictions": [p.as_dict() for p in result.predictions],
        "groups": [g.as_dict() for g in result.groups] if result.groups is not None else [],
        "timing_ms": result.timing_ms,
    }

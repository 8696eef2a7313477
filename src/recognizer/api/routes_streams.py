"""Video streams run by the server: add, list, watch live, remove. Every route needs ``streams``.

The streams themselves run in :mod:`recognizer.streams.service` on the server's pipeline. URLs come
back with their credentials redacted, always; a stream's failures are its ``state`` and ``reason``,
never an error of these routes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from recognizer.api import sse
from recognizer.api.deps import client_of
from recognizer.api.guard import require
from recognizer.api.problems import responses_for
from recognizer.errors import FeatureUnavailableError
from recognizer.streams.service import StreamManager

router = APIRouter(prefix="/v1/streams", tags=["streams"])

STREAMS = require("streams")
StreamName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
#: Server-Sent Events: a status snapshot this often, and the stream ends after STREAM_MAX_S
#: (see recognizer.api.sse)
STATUS_EVERY_S = 1.0
STREAM_MAX_S = 60.0


class StreamRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", examples=["door"])
    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^[ -~]+$",  # printable ASCII: percent-encode anything else (file:///videos/caf%C3%A9.mp4)
        description="rtsp://, http(s)://, tcp://, a camera (/dev/video0) or a video file inside "
        "RECOGNIZER_JOB_ROOTS",
        examples=["rtsp://camera.local/stream1"],
    )
    fps: float | None = Field(None, gt=0, le=60, description="Frames sampled per second.")
    rules: dict[str, Any] | list[dict[str, Any]] | None = Field(
        None, description='Alert rules as in a rules file: {"defaults": {...}, "rule": [...]}.'
    )


def streams_of(request: Request) -> StreamManager:
    manager = request.app.state.streams
    if manager is None:
        raise FeatureUnavailableError(
            "streams do not run on Ray Serve replicas; use a plain `recognizer serve`"
        )
    manager.check_here()
    return manager


@router.post("", status_code=201, dependencies=[STREAMS], responses=responses_for(400, 403, 409, 422, 429))
async def add_stream(request: Request, body: StreamRequest, response: Response) -> dict[str, Any]:
    """Start watching a source. Connecting happens in the background: the answer's ``state`` is
    ``connecting``, and a source that cannot be reached turns ``lost`` (live) or ``failed`` (file)
    with a ``reason``, retried with backoff."""
    manager = streams_of(request)
    status = await manager.add(body.name, body.url, body.fps, body.rules, client_of(request))
    response.headers["Location"] = f"{router.prefix}/{body.name}"
    return status


@router.get("", dependencies=[STREAMS], responses=responses_for(403, 409))
async def list_streams(request: Request) -> dict[str, Any]:
    """Every stream: state, rates, frame age, reconnects, current labels and rule levels, last events."""
    return {"streams": streams_of(request).statuses()}


@router.get(
    "/events",
    dependencies=[STREAMS],
    response_class=StreamingResponse,
    responses=sse.OPENAPI | responses_for(403, 409),
)
async def stream_events(request: Request) -> StreamingResponse:
    """Server-Sent Events: ``status`` (the same JSON as ``GET /v1/streams``) every second, and one
    ``alert`` per event as it happens. Ends after a minute; EventSource reconnects by itself."""
    manager = streams_of(request)
    return sse.response(_events(manager))


async def _events(manager: StreamManager) -> AsyncIterator[str]:
    queue = manager.subscribe()
    try:
        yield sse.RETRY
        loop = asyncio.get_running_loop()
        end = loop.time() + STREAM_MAX_S
        next_status = loop.time()
        while loop.time() < end:
            if loop.time() >= next_status:
                yield sse.event("status", {"streams": manager.statuses()})
                next_status = loop.time() + STATUS_EVERY_S
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(queue.get(), max(0.05, next_status - loop.time()))
                yield sse.event("alert", event.as_dict())
    finally:
        manager.unsubscribe(queue)


@router.get("/{name}", dependencies=[STREAMS], responses=responses_for(403, 404, 409, 422))
async def get_stream(request: Request, name: StreamName) -> dict[str, Any]:
    return streams_of(request).status(name)


@router.delete(
    "/{name}", status_code=204, dependencies=[STREAMS], responses=responses_for(403, 404, 409, 422)
)
async def delete_stream(request: Request, name: StreamName) -> Response:
    """Stop the stream (every thread of it joined) and forget it, also across restarts."""
    await streams_of(request).remove(name)
    return Response(status_code=204)

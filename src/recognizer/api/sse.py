"""Server-Sent Events, as every live route answers them (job progress, streams).

A response starts with a reconnection hint, then carries one ``event:``/``data:`` block per event
with compact JSON. Proxies are told not to cache or buffer it (``X-Accel-Buffering`` for nginx),
or a browser would see events in bursts. Routes end their streams after a while themselves:
uvicorn's graceful shutdown waits for open responses, and EventSource reconnects by itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

#: how long an EventSource waits before reconnecting once a stream ends
RECONNECT_MS = 1000
RETRY = f"retry: {RECONNECT_MS}\n\n"
#: the OpenAPI ``responses`` entry: one event as clients parse it (``event`` names it, ``data`` its
#: JSON; the first block is only ``retry``)
OPENAPI: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string"},
                        "data": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        }
    }
}


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

"""The guard refuses declared-oversize bodies unread; every other request is counted by route."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import Message

from recognizer.api import problems
from recognizer.api.limits import BodyLimits
from recognizer.api.middleware import GuardAndMeasure
from recognizer.observability.metrics import Metrics

LIMIT = 1_000_000
LIMITS = BodyLimits(image=LIMIT, batch=LIMIT, tensor=LIMIT, other=LIMIT)


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(GuardAndMeasure, limits=LIMITS, metrics=metrics)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/items/{item_id}")
    async def upload(item_id: int, request: Request) -> dict[str, int]:
        return {"id": item_id, "size": len(await request.body())}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    return app


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def client(metrics) -> TestClient:
    return TestClient(_app(metrics), raise_server_exceptions=False)


def _requests(metrics: Metrics, route: str, status: str) -> float | None:
    return metrics.registry.get_sample_value("recognizer_requests_total", {"route": route, "status": status})


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read():
    async def app_must_not_run(scope, receive, send) -> None:
        raise AssertionError("the app was called")

    async def receive_must_not_run() -> Message:
        raise AssertionError("the body was read")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    guard = GuardAndMeasure(app_must_not_run, limits=LIMITS, metrics=Metrics())
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/classify",
        "headers": [(b"content-type", b"image/jpeg"), (b"content-length", str(LIMIT + 1).encode())],
    }
    asyncio.run(guard(scope, receive_must_not_run, send))

    start, body = sent
    assert start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    problem = json.loads(body["body"])
    assert problem["code"] == "request_too_large"
    assert problem["instance"] == "/v1/classify"
    assert (
        problem["detail"]
        == "the request body declares 1,000,001 bytes; /v1/classify accepts at most 1,000,000 bytes"
    )


def test_an_oversize_upload_gets_a_413_problem(client):
    response = client.post("/items/1", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "request_too_large"


def test_a_body_exactly_at_the_limit_gets_through(client):
    response = client.post("/items/1", content=b"x" * LIMIT)
    assert response.json() == {"id": 1, "size": LIMIT}


def test_a_request_is_counted_under_its_route_template(client, metrics):
    assert client.get("/items/1").status_code == 200
    assert client.get("/items/2").status_code == 200
    assert _requests(metrics, "/items/{item_id}", "200") == 2
    assert _requests(metrics, "/items/1", "200") is None
    latency = metrics.registry.get_sample_value(
        "recognizer_request_seconds_count", {"route": "/items/{item_id}"}
    )
    assert latency == 2


def test_an_error_response_is_counted_with_its_status(client, metrics):
    assert client.get("/items/not-a-number").status_code == 422
    assert client.delete("/items/1").status_code == 405
    assert _requests(metrics, "/items/{item_id}", "422") == 1
    assert _requests(metrics, "/items/{item_id}", "405") == 1


def test_an_unknown_path_is_counted_as_unmatched(client, metrics):
    assert client.get("/no/such/page").status_code == 404
    assert _requests(metrics, "unmatched", "404") == 1


def test_an_unexpected_exception_is_counted_as_a_500(client, metrics):
    assert client.get("/boom").status_code == 500
    assert _requests(metrics, "/boom", "500") == 1


def test_a_chunked_body_is_cut_off_once_it_streams_past_the_limit(client, metrics):
    def chunks():
        for _ in range(50):
            yield b"x" * 100_000  # 5 MB in all, no Content-Length

    response = client.post("/items/1", content=chunks())
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert _requests(metrics, "/items/{item_id}", "413") == 1


def test_oversized_headers_are_431(client):
    assert client.get("/items/1", headers={"x-big": "a" * 40_000}).status_code == 431
    many = {f"x-h{i}": "1" for i in range(150)}
    response = client.get("/items/1", headers=many)
    assert response.status_code == 431 and response.json()["code"] == "headers_too_large"


def test_head_is_answered_like_get_without_a_body(client):
    response = client.head("/items/7")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(b'{"id":7}'))


def test_a_client_that_disconnects_mid_upload_is_a_499_in_one_log_line(metrics, caplog):
    messages = [{"type": "http.request", "body": b"x" * 10, "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        pass

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/items/1",
        "raw_path": b"/items/1",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/octet-stream")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    with caplog.at_level(logging.DEBUG):
        asyncio.run(_app(metrics)(scope, receive, send))
    assert _requests(metrics, "/items/{item_id}", "499") == 1
    assert _requests(metrics, "/items/{item_id}", "500") is None
    mine = [r for r in caplog.records if r.name.startswith("recognizer")]
    assert len(mine) == 1 and mine[0].exc_info is None and "closed the connection" in mine[0].getMessage()

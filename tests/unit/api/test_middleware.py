"""The guard refuses declared-oversize bodies unread; every other request is counted by route."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import Message

from recognizer.api import problems
from recognizer.api.middleware import GuardAndMeasure
from recognizer.observability.metrics import Metrics

LIMIT = 1_000_000


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(GuardAndMeasure, max_body_bytes=LIMIT, metrics=metrics)

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

    guard = GuardAndMeasure(app_must_not_run, max_body_bytes=LIMIT, metrics=Metrics())
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
    assert problem["detail"] == "request body over 1 MB"


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

"""/v1/streams through the ASGI app on the real model: a video file under the allowed roots is
watched live (labels, events, metrics, Server-Sent Events), bad requests are problems, credentials
never come back, and with a database the streams start again after a restart."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from recognizer.api import create_app, routes_streams
from tests.integration.conftest import wait_ready

SECRET_URL = "rtsp://admin:hunter2@127.0.0.1:9/cam"


@pytest.fixture(scope="module")
def roots(tmp_path_factory, slideshow_clip):
    root = tmp_path_factory.mktemp("stream-roots")
    shutil.copy(slideshow_clip, root / "door.mp4")
    return root


@pytest.fixture(scope="module")
def stream_settings(api_settings, roots, tmp_path_factory):
    return api_settings.with_flags(
        data_dir=tmp_path_factory.mktemp("streams-data"), job_roots=str(roots), stream_read_timeout_s=2.0
    )


@pytest.fixture(scope="module")
def client(stream_settings):
    with TestClient(create_app(stream_settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def until(client: TestClient, name: str, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/v1/streams/{name}").json()
        if check(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def test_a_video_file_is_watched_live_with_labels_events_and_metrics(client, roots):
    created = client.post("/v1/streams", json={"name": "door", "url": str(roots / "door.mp4"), "fps": 4})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/streams/door"
    live = until(client, "door", lambda s: s["labels"])
    assert live["state"] in ("live", "ended") and live["groups"][0]["name"] == "cat"
    assert live["fps"] == 4 and live["frame_age_s"] < 1.0
    cat = until(
        client, "door", lambda s: any(e["kind"] == "started" and e["rule"] == "cat" for e in s["events"])
    )
    assert cat["events"][-1]["stream"] == "door"
    deadline = time.monotonic() + 5  # /metrics reads a snapshot taken every second
    while 'recognizer_stream_events_total{kind="started",stream="door"}' not in (
        metrics := client.get("/metrics").text
    ):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)
    assert 'recognizer_stream_frames_in_total{stream="door"}' in metrics
    assert client.delete("/v1/streams/door").status_code == 204
    assert client.get("/v1/streams/door").status_code == 404


def test_live_updates_arrive_as_server_sent_events(client, roots, monkeypatch):
    monkeypatch.setattr(routes_streams, "STREAM_MAX_S", 6.0)
    client.post("/v1/streams", json={"name": "sse", "url": str(roots / "door.mp4")})
    seen: dict[str, list] = {"status": [], "alert": []}
    with client.stream("GET", "/v1/streams/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for block in stream.iter_text():
            for event in filter(None, block.split("\n\n")):
                lines = dict(line.split(": ", 1) for line in event.splitlines())
                if "event" in lines:
                    seen[lines["event"]].append(json.loads(lines["data"]))
    assert seen["status"] and seen["status"][-1]["streams"][0]["name"] == "sse"
    assert any(alert["kind"] == "started" for alert in seen["alert"])
    client.delete("/v1/streams/sse")


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"name": "x", "url": "ftp://cam/x.mp4"}, 422, "unknown stream URL scheme ftp://"),
        ({"name": "x", "url": "/etc/passwd"}, 403, "inside RECOGNIZER_JOB_ROOTS"),
        ({"name": "bad name!", "url": "tcp://127.0.0.1:9"}, 422, None),
        ({"name": "events", "url": "tcp://127.0.0.1:9"}, 409, "taken by a route"),
        ({"name": "x", "url": "/srv/a\u0000b.mp4"}, 422, None),
        (
            {"name": "x", "url": "tcp://127.0.0.1:9", "rules": {"rule": [{"name": "r", "groups": ["caat"]}]}},
            422,
            "did you mean 'cat'",
        ),
        ({"name": "x", "url": "tcp://127.0.0.1:9", "fps": 0}, 422, None),
    ],
)
def test_bad_requests_are_problems_naming_the_fix(client, body, status, detail):
    response = client.post("/v1/streams", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if detail:
        assert detail in response.json()["detail"]
    assert client.get("/v1/streams").json()["streams"] == [] or "x" not in [
        s["name"] for s in client.get("/v1/streams").json()["streams"]
    ]


def test_an_unreachable_camera_is_lost_with_its_reason_and_never_shows_its_password(client):
    created = client.post("/v1/streams", json={"name": "cam", "url": SECRET_URL})
    assert created.status_code == 201 and "hunter2" not in created.text
    assert created.json()["url"] == "rtsp://***@127.0.0.1:9/cam"
    lost = until(client, "cam", lambda s: s["state"] == "lost")
    assert lost["reason"] == "connection refused"
    assert client.post("/v1/streams", json={"name": "cam", "url": SECRET_URL}).status_code == 409
    everything = client.get("/v1/streams").text + client.get("/metrics").text
    assert "hunter2" not in everything


def test_streams_start_again_after_a_restart_and_one_worker_runs_them(stream_settings, tmp_path):
    settings = stream_settings.with_flags(data_dir=tmp_path)
    with TestClient(create_app(settings)) as first:
        wait_ready(first)
        assert first.post("/v1/streams", json={"name": "cam", "url": SECRET_URL}).status_code == 201
        with TestClient(create_app(settings)) as second_worker:  # same data folder, same time
            response = second_worker.get("/v1/streams")
            assert response.status_code == 409 and "--workers 1" in response.json()["detail"]
    with TestClient(create_app(settings)) as again:
        wait_ready(again)
        deadline = time.monotonic() + 30
        while "cam" not in {s["name"] for s in again.get("/v1/streams").json()["streams"]}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert again.get("/v1/streams/cam").json()["url"] == "rtsp://***@127.0.0.1:9/cam"
        assert again.delete("/v1/streams/cam").status_code == 204
    with TestClient(create_app(settings)) as after_delete:
        wait_ready(after_delete)
        assert after_delete.get("/v1/streams").json()["streams"] == []

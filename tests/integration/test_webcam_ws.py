"""Webcam mode, WS /v1/streams/webcam, through the ASGI app on the real bundled model: a real
cat photo gets cat labels, a bad frame gets an error and the socket stays open, refused
credentials close with 1008, an oversized frame with 1009, and the newest frame wins."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from recognizer.api import create_app
from recognizer.auth import keys, users
from tests.helpers import jpeg_bytes, png_bytes
from tests.integration.conftest import wait_ready

PATH = "/v1/streams/webcam"
CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"
SMALL_LIMIT = 200_000


@pytest.fixture(scope="module")
def cat_jpeg(cat_photo) -> bytes:
    return jpeg_bytes(cat_photo, quality=80)


def test_a_cat_frame_gets_cat_labels(client, cat_jpeg):
    with client.websocket_connect(f"{PATH}?top_k=3&groups=true") as ws:
        ws.send_bytes(cat_jpeg)
        reply = ws.receive_json()
    assert reply["frame"] == 1 and reply["dropped"] == 0
    labels = [p["label"] for p in reply["predictions"]]
    assert len(labels) == 3 and labels[0] in CAT_LABELS, labels
    assert "cat" in " ".join(labels)
    assert set(reply["predictions"][0]) == {"index", "wnid", "label", "score"}
    assert reply["groups"][0]["name"] == "cat", reply["groups"]
    assert reply["model"] == "efficientnet_lite0"
    assert reply["timing_ms"]["total"] > 0
    history = client.get("/v1/history", params={"source": "webcam"}).json()
    assert history["items"] == []  # a live view is not a record: no row per webcam frame


def test_a_bad_frame_gets_an_error_and_the_socket_stays_open(client, cat_photo):
    with client.websocket_connect(PATH) as ws:
        ws.send_bytes(PDF)
        not_an_image = ws.receive_json()
        ws.send_bytes(b"")
        empty = ws.receive_json()
        ws.send_text("hello")
        text = ws.receive_json()
        ws.send_bytes(png_bytes(cat_photo))  # PNG frames too
        good = ws.receive_json()
    assert not_an_image["frame"] == 1 and not_an_image["error"]["status"] == 415
    assert "not an image" in not_an_image["error"]["detail"]
    assert set(not_an_image["error"]) >= {"type", "title", "status", "detail"}
    assert empty["frame"] == 2 and empty["error"]["status"] == 400
    assert text["frame"] == 3 and text["error"]["status"] == 415
    assert good["frame"] == 4 and good["predictions"][0]["label"] in CAT_LABELS


def test_the_newest_frame_wins(client, cat_jpeg):
    """A burst of frames: every one is answered or dropped, the last one is answered, in order."""
    burst = 12
    with client.websocket_connect(PATH) as ws:
        for _ in range(burst):
            ws.send_bytes(cat_jpeg)
        replies = [ws.receive_json()]
        while replies[-1]["frame"] < burst:
            replies.append(ws.receive_json())
    frames = [reply["frame"] for reply in replies]
    assert frames == sorted(frames) and frames[-1] == burst
    assert replies[-1]["dropped"] >= 1, frames  # a burst outruns one recognition at a time
    assert len(replies) + replies[-1]["dropped"] == burst
    assert all(reply["predictions"][0]["label"] in CAT_LABELS for reply in replies)


def test_bad_query_parameters_are_refused(client):
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"{PATH}?top_k=0") as ws:
        ws.receive_json()
    assert refused.value.code == 1008


def test_an_unknown_model_fails_each_frame_not_the_socket(client, cat_jpeg):
    with client.websocket_connect(f"{PATH}?model=nonesuch") as ws:
        ws.send_bytes(cat_jpeg)
        reply = ws.receive_json()
    assert reply["error"]["status"] == 404


# -- a server that needs credentials ---------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(api_settings, tmp_path_factory):
    flags = {"data_dir": tmp_path_factory.mktemp("webcam-auth"), "auth": "on", "max_image_bytes": SMALL_LIMIT}
    app = create_app(api_settings.with_flags(**flags))
    engine = app.state.access.engine
    tokens = {scope: keys.create(engine, f"only {scope}", scope)[1] for scope in ("classify", "history:read")}
    users.add(engine, "viewer", "viewer-password", "viewer")
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client, tokens


def refusal(client: TestClient, **kwargs) -> tuple[int, dict]:
    """The close code and the error message a refused connection gets first."""
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(PATH, **kwargs) as ws:
        message = ws.receive_json()
        ws.receive_json()  # the close
    return closed.value.code, message["error"]


@pytest.mark.parametrize(
    ("key", "status"),
    [
        pytest.param(None, 401, id="no-credentials"),
        pytest.param("rk_000000000000_" + "x" * 43, 401, id="wrong-key"),
        pytest.param("not-even-a-key", 401, id="malformed-key"),
        pytest.param("history:read", 403, id="key-without-classify"),
    ],
)
def test_refused_credentials_close_with_1008(secured, key, status):
    client, tokens = secured
    offered = ["recognizer", f"bearer.{tokens.get(key, key)}"] if key else None
    code, error = refusal(client, subprotocols=offered)
    assert code == 1008
    assert error["status"] == status
    assert "rk_" not in error["detail"]


def test_a_key_offered_as_a_subprotocol_is_accepted_and_never_echoed(secured, cat_jpeg):
    client, tokens = secured
    with client.websocket_connect(PATH, subprotocols=["recognizer", f"bearer.{tokens['classify']}"]) as ws:
        assert ws.accepted_subprotocol == "recognizer"
        ws.send_bytes(cat_jpeg)
        reply = ws.receive_json()
    assert reply["predictions"][0]["label"] in CAT_LABELS


def test_a_key_in_a_header_is_accepted(secured, cat_jpeg):
    client, tokens = secured
    with client.websocket_connect(PATH, headers={"X-API-Key": tokens["classify"]}) as ws:
        ws.send_bytes(cat_jpeg)
        assert ws.receive_json()["predictions"][0]["label"] in CAT_LABELS


def test_the_session_cookie_works_from_the_pages_origin_only(secured, cat_jpeg):
    client, _ = secured
    login = client.post("/v1/session", json={"username": "viewer", "password": "viewer-password"})
    assert login.status_code == 200, login.text
    try:
        with client.websocket_connect(PATH, headers={"Origin": "http://testserver"}) as ws:
            ws.send_bytes(cat_jpeg)
            assert ws.receive_json()["predictions"][0]["label"] in CAT_LABELS
        code, error = refusal(client, headers={"Origin": "https://elsewhere.example"})
    finally:
        client.cookies.clear()
    assert code == 1008 and error["status"] == 403
    assert "RECOGNIZER_CORS_ORIGINS" in error["detail"]


def test_a_frame_over_the_byte_limit_closes_with_1009(secured, cat_jpeg):
    client, tokens = secured
    with client.websocket_connect(PATH, headers={"X-API-Key": tokens["classify"]}) as ws:
        ws.send_bytes(cat_jpeg)
        assert "predictions" in ws.receive_json()
        ws.send_bytes(b"\xff" * (SMALL_LIMIT + 1))
        reply = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert reply["frame"] == 2 and reply["error"]["status"] == 413
    assert closed.value.code == 1009

"""Image bytes come out of a request the ways a client sends them, and nothing else gets through."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from recognizer.api import problems
from recognizer.api.uploads import read_uploads
from recognizer.errors import ImageTooLargeError
from recognizer.imaging import DecodeLimits, decode_image

MAX_BYTES = 16
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.post("/upload")
    async def upload(request: Request, max_files: int = 1) -> list[tuple[str, int]]:
        return [(name, len(data)) for name, data in await read_uploads(request, MAX_BYTES, max_files)]

    return TestClient(app, raise_server_exceptions=False)


def _problem(response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == code
    return body


def test_a_multipart_file_field_is_read_with_its_filename(client):
    response = client.post("/upload", files={"file": ("cat.jpg", b"meow", "image/jpeg")})
    assert response.status_code == 200
    assert response.json() == [["cat.jpg", 4]]


def test_a_multipart_files_field_is_read_too(client):
    response = client.post("/upload", files={"files": ("dog.png", b"woof!", "image/png")})
    assert response.json() == [["dog.png", 5]]


def test_several_files_come_back_in_order_file_fields_first(client):
    response = client.post(
        "/upload",
        params={"max_files": 3},
        files=[("files", ("c.jpg", b"ccc")), ("file", ("a.jpg", b"a")), ("file", ("b.jpg", b"bb"))],
    )
    assert response.json() == [["a.jpg", 1], ["b.jpg", 2], ["c.jpg", 3]]


@pytest.mark.parametrize(
    "content_type", ["image/jpeg", "image/png", "IMAGE/WEBP", "application/octet-stream"]
)
def test_a_raw_image_body_is_read_as_one_upload(client, content_type):
    response = client.post("/upload", content=b"\xff\xd8\xffrawbytes", headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json() == [["upload", 11]]


def test_an_empty_raw_body_is_passed_on_for_the_decoder_to_refuse(client):
    response = client.post("/upload", content=b"", headers={"content-type": "image/jpeg"})
    assert response.json() == [["upload", 0]]


def test_a_body_without_a_content_type_is_a_415(client):
    body = _problem(client.post("/upload", content=b"abc"), 415, "unsupported_media_type")
    assert "'missing'" in body["detail"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded"]
)
def test_a_body_that_is_not_an_image_type_is_a_415(client, content_type):
    response = client.post("/upload", content=b"abc", headers={"content-type": content_type})
    body = _problem(response, 415, "unsupported_media_type")
    assert content_type in body["detail"]
    assert "multipart/form-data" in body["detail"]  # says what to send instead


def _text_fields_only(**fields: str) -> dict[str, object]:
    """A multipart body with text fields and no file (httpx would send urlencoded instead)."""
    parts = "".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    return {
        "content": f"{parts}--b--\r\n".encode(),
        "headers": {"content-type": "multipart/form-data; boundary=b"},
    }


def test_multipart_without_any_file_is_a_422(client):
    body = _problem(client.post("/upload", **_text_fields_only(note="hello")), 422, "bad_request")
    assert "field named 'file'" in body["detail"]


def test_multipart_with_the_file_under_another_name_is_a_422(client):
    response = client.post("/upload", files={"image": ("cat.jpg", b"meow")})
    body = _problem(response, 422, "bad_request")
    assert "field named 'file'" in body["detail"]


def test_a_text_field_named_file_is_a_422(client):
    body = _problem(client.post("/upload", **_text_fields_only(file="cat.jpg")), 422, "bad_request")
    assert "file upload, not text" in body["detail"]


def test_more_files_than_allowed_is_a_400_from_the_form_parser(client):
    response = client.post("/upload", files=[("file", ("a.jpg", b"a")), ("file", ("b.jpg", b"b"))])
    body = _problem(response, 400, "http_400")
    assert body["detail"] == "Too many files. Maximum number of files is 1."


def test_more_files_than_allowed_is_not_titled_bad_image(client):
    response = client.post("/upload", files=[("file", ("a.jpg", b"a")), ("file", ("b.jpg", b"b"))])
    assert response.json()["title"] != "Bad image"


def test_a_raw_body_over_the_limit_is_a_413(client):
    response = client.post("/upload", content=b"x" * (MAX_BYTES + 1), headers={"content-type": "image/png"})
    _problem(response, 413, "image_too_large")


def test_a_raw_body_at_the_limit_is_accepted(client):
    response = client.post("/upload", content=b"x" * MAX_BYTES, headers={"content-type": "image/png"})
    assert response.json() == [["upload", MAX_BYTES]]


def test_a_chunked_raw_body_over_the_limit_is_a_413_without_any_content_length(client):
    def chunks() -> Iterator[bytes]:
        yield b"x" * MAX_BYTES
        yield b"x"

    response = client.post("/upload", content=chunks(), headers={"content-type": "image/png"})
    _problem(response, 413, "image_too_large")


def test_an_oversized_multipart_file_is_cut_one_byte_over_the_limit_for_the_decoder_to_refuse(client):
    # read_uploads itself does not refuse it: it reads max_bytes + 1 bytes and leaves the size
    # check to decode_image, which the routes call next. (The parser still spooled the whole part.)
    response = client.post("/upload", files={"file": ("big.jpg", b"x" * (MAX_BYTES * 4))})
    assert response.status_code == 200
    assert response.json() == [["big.jpg", MAX_BYTES + 1]]
    with pytest.raises(ImageTooLargeError):
        decode_image(b"x" * (MAX_BYTES + 1), DecodeLimits(max_bytes=MAX_BYTES))

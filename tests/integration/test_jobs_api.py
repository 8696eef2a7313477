"""Folder jobs over HTTP, as a client meets them: a zip or a folder in, progress as Server-Sent
Events, results in three formats equal to `recognizer batch`'s; every bad input a clear 4xx."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import update

from recognizer.api import create_app, routes_jobs
from recognizer.cli import main
from recognizer.inference.pipeline import Pipeline
from recognizer.storage.tables import jobs as jobs_table
from tests.helpers import fake_loader
from tests.integration.conftest import wait_ready

PHOTOS = 20
MAX_UPLOAD = 8_000_000


@pytest.fixture(scope="module")
def photos(labeled_photos) -> list[Path]:
    return sorted(photo.path for photo in labeled_photos)[:PHOTOS]


@pytest.fixture(scope="module")
def zipped(photos, tmp_path_factory) -> Path:
    """The photos in a folder of the zip, then a truncated JPEG and a PDF named .jpg."""
    path = tmp_path_factory.mktemp("upload") / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for photo in photos:
            archive.write(photo, f"set/{photo.name}")
        archive.writestr("set/cut.jpg", photos[0].read_bytes()[:5000])
        archive.writestr("report.jpg", b"%PDF-1.4\n%%EOF\n")
    return path


@pytest.fixture(scope="module")
def roots(photos, tmp_path_factory) -> Path:
    """``root/photos`` (the photos), and ways out: a linked folder, a folder with a linked file."""
    base = tmp_path_factory.mktemp("jobs-roots")
    root, outside = base / "root", base / "outside"
    (root / "photos" / "more").mkdir(parents=True)
    outside.mkdir()
    for photo in photos[:-3]:
        shutil.copy(photo, root / "photos" / photo.name)
    for photo in photos[-3:]:
        shutil.copy(photo, root / "photos" / "more" / photo.name)
    shutil.copy(photos[0], outside / "secret.jpg")
    (root / "linked").symlink_to(outside)
    (root / "leaky").mkdir()
    shutil.copy(photos[1], root / "leaky" / "fine.jpg")
    (root / "leaky" / "escape.jpg").symlink_to(outside / "secret.jpg")
    return root


@pytest.fixture(scope="module")
def client(api_settings, roots, tmp_path_factory):
    flags = {"job_roots": str(roots), "job_max_upload_bytes": MAX_UPLOAD, "top_k": 3}
    app = create_app(api_settings.with_flags(data_dir=tmp_path_factory.mktemp("jobs-data"), **flags))
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def submit_zip(client: TestClient, data: bytes, **params):
    return client.post("/v1/jobs", files={"file": ("photos.zip", data, "application/zip")}, params=params)


def events(client: TestClient, job_id: str) -> list[tuple[str, dict]]:
    found = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for block in stream.iter_text():
            for event in filter(None, block.split("\n\n")):
                lines = dict(line.split(": ", 1) for line in event.splitlines())
                if "event" in lines:  # not the retry hint
                    found.append((lines["event"], json.loads(lines["data"])))
    return found


def finished(client: TestClient, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def read(data: bytes, format: str) -> list[dict]:
    if format == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    if format == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines()]
    return pq.read_table(io.BytesIO(data)).to_pylist()


def test_a_zip_job_reports_progress_then_counts_and_failed_files(client, zipped):
    # A folder job first, so the zip job waits its turn: its stream starts while it is queued.
    ahead = client.post("/v1/jobs", json={"folder": "photos"})
    response = submit_zip(client, zipped.read_bytes())
    assert (ahead.status_code, response.status_code) == (202, 202)
    job = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert (job["state"], job["kind"], job["input"], job["counts"]["total"]) == (
        "queued",
        "upload",
        "photos.zip",
        PHOTOS + 2,
    )
    seen = events(client, job["id"])
    names = [name for name, _ in seen]
    assert names[0] == "progress" and names[-1] == "done" and set(names) == {"progress", "done"}
    assert seen[0][1]["state"] == "queued" and seen[-1][1]["counts"]["done"] == PHOTOS + 2
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["counts"] == {"total": PHOTOS + 2, "done": PHOTOS + 2, "reused": 0, "failed": 2}
    assert done["started_at"] <= done["finished_at"] and done["images_per_s"] > 0
    errors = {error["file"]: error["type"] for error in done["errors"]}
    assert errors == {"set/cut.jpg": "corrupt_image", "report.jpg": "not_an_image"}
    assert client.app.state.history.writer.flush(10)
    recorded = client.get("/v1/history", params={"source": f"job:{job['id']}", "limit": 50}).json()["items"]
    assert len(recorded) == PHOTOS + 2  # rejected inputs are history rows too, named as in the zip
    assert {row["client"] for row in recorded} == {"testclient"}
    assert {"set/cut.jpg", "report.jpg"} <= {row["name"] for row in recorded}
    listed = client.get("/v1/jobs").json()["items"]
    assert [item["id"] for item in listed[:2]] == [job["id"], ahead.json()["id"]]
    assert client.get("/v1/jobs", params={"state": "done"}).json()["items"][0]["id"] == job["id"]


@pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
def test_results_equal_the_batch_commands(client, zipped, settings, tmp_path, format):
    job = submit_zip(client, zipped.read_bytes(), top_k=3).json()
    assert finished(client, job["id"])["state"] == "done"
    response = client.get(f"/v1/jobs/{job['id']}/results", params={"format": format})
    assert response.status_code == 200, response.text
    assert f'filename="job-{job["id"]}.{format}"' in response.headers["content-disposition"]
    out = tmp_path / f"r.{format}"
    result = CliRunner().invoke(main, ["batch", str(zipped), "--out", str(out), "--top-k", "3", "--quiet"])
    assert result.exit_code == 1, result.output  # two inputs fail, as they should
    expected = read(out.read_bytes(), format)
    for row in expected:  # the command names members after the archive's path on this machine
        row["file"] = row["file"].removeprefix(f"{zipped}!")
    assert read(response.content, format) == expected
    assert [row["file"] for row in expected][-2:] == ["set/cut.jpg", "report.jpg"]


def test_a_folder_under_a_root_by_relative_or_absolute_name(client, roots, photos):
    for given in ("photos", str(roots / "photos"), "photos/../photos/"):
        response = client.post("/v1/jobs", json={"folder": given}, params={"groups": True})
        assert response.status_code == 202, response.text
        job = finished(client, response.json()["id"])
        assert (job["input"], job["counts"]["failed"], job["counts"]["total"]) == (given, 0, PHOTOS)
    rows = read(client.get(f"/v1/jobs/{job['id']}/results?format=jsonl").content, "jsonl")
    assert [row["file"] for row in rows][:3] == [f"more/{photo.name}" for photo in photos[-3:]]  # sorted
    assert all(row["groups"] for row in rows) and str(roots) not in json.dumps(rows)


@pytest.mark.parametrize(
    ("folder", "status", "code"),
    [
        ("../outside", 403, "path_not_allowed"),
        ("photos/../../outside", 403, "path_not_allowed"),
        ("/etc", 403, "path_not_allowed"),
        ("/", 403, "path_not_allowed"),
        ("linked", 403, "path_not_allowed"),  # a symlinked folder that leads out
        ("leaky", 403, "path_not_allowed"),  # a folder with one symlinked file that leads out
        ("missing", 404, "not_found"),
        ("photos/cat.jpg", 404, "not_found"),
        ("pho\x00tos", 422, "bad_request"),
        ("", 422, "invalid_parameters"),
    ],
)
def test_folders_outside_the_roots_are_refused(client, folder, status, code):
    response = client.post("/v1/jobs", json={"folder": folder})
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert "secret" not in response.text


def test_a_refused_folder_names_no_server_path(client, roots):
    response = client.post("/v1/jobs", json={"folder": "leaky"})
    assert "escape.jpg links outside" in response.json()["detail"]
    assert str(roots) not in response.text


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(4):
            archive.writestr(f"flat{index}.bmp", bytes(19_000_000))  # each under the image limit
    return buffer.getvalue()


def _encrypted(photo: Path) -> bytes:
    """A zip whose member says it is encrypted (the flag in both headers)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(photo, "a.jpg")
    data = bytearray(buffer.getvalue())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    return bytes(data)


def _only_text() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "no images here")
    return buffer.getvalue()


def test_bad_uploads_are_refused_and_leave_nothing_behind(client, zipped, photos):
    whole = zipped.read_bytes()
    cases = {
        "not a zip": (b"this is not a zip" * 100, 422, "bad_archive"),
        "cut short": (whole[: len(whole) // 2], 422, "bad_archive"),
        "empty": (b"", 422, "bad_archive"),
        "a bomb": (_bomb(), 422, "bad_archive"),
        "encrypted": (_encrypted(photos[0]), 422, "bad_archive"),
        "no images": (_only_text(), 422, "bad_archive"),
        "too large": (bytes(MAX_UPLOAD + 1), 413, "request_too_large"),
    }
    for label, (data, status, code) in cases.items():
        response = submit_zip(client, data)
        assert (response.status_code, response.json()["code"]) == (status, code), (label, response.text)
    bomb = submit_zip(client, _bomb()).json()["detail"]
    assert "zip bomb" in bomb and "/" not in bomb.split("(")[0]
    raw = client.post("/v1/jobs", content=b"", headers={"Content-Type": "application/zip"})
    assert (raw.status_code, raw.json()["code"]) == (422, "bad_archive")
    streamed = client.post(  # no Content-Length: refused as it passes the limit
        "/v1/jobs",
        content=(bytes(1_000_000) for _ in range(MAX_UPLOAD // 1_000_000 + 2)),
        headers={"Content-Type": "application/zip"},
    )
    assert streamed.status_code == 413
    no_file = client.post("/v1/jobs", files={"other": ("a.zip", whole)})
    assert no_file.status_code == 422 and "field named 'file'" in no_file.json()["detail"]
    two = client.post("/v1/jobs", files=[("file", ("a.zip", whole)), ("file", ("b.zip", whole))])
    assert two.status_code == 422 and "one zip per job" in two.json()["detail"]
    wrong_type = client.post("/v1/jobs", content=b"x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    not_json = client.post("/v1/jobs", content=b"{", headers={"Content-Type": "application/json"})
    assert (not_json.status_code, not_json.json()["code"]) == (422, "bad_request")
    folders = {path.name for path in (client.app.state.settings.data_dir / "jobs").iterdir()}
    known = {item["id"] for item in client.get("/v1/jobs", params={"limit": 500}).json()["items"]}
    assert folders == known  # every refused upload was removed


def test_unknown_jobs_and_unfinished_results(client):
    for path in ("/v1/jobs/0123abcd", "/v1/jobs/0123abcd/events", "/v1/jobs/0123abcd/results"):
        assert client.get(path).status_code == 404
    assert client.delete("/v1/jobs/0123abcd").status_code == 404
    assert client.get("/v1/jobs/not-an-id!").status_code in (404, 422)


@pytest.fixture
def slow_app(api_settings, roots, tmp_path):
    """An app whose engine takes 50 ms a batch (the fake one), one image a batch: jobs run long."""
    settings = api_settings.with_flags(data_dir=tmp_path / "data", job_roots=str(roots), max_batch=1)
    return create_app(settings, pipeline=Pipeline(settings, loader=fake_loader(delay_s=0.05)))


def test_deleting_a_queued_or_running_job_cancels_it_and_removes_its_files(slow_app):
    with TestClient(slow_app) as client:
        wait_ready(client)
        running = client.post("/v1/jobs", json={"folder": "photos"}).json()
        queued = client.post("/v1/jobs", json={"folder": "photos"}).json()
        while client.get(f"/v1/jobs/{running['id']}").json()["counts"]["done"] < 2:
            time.sleep(0.02)
        unfinished = client.get(f"/v1/jobs/{queued['id']}/results")
        assert (unfinished.status_code, unfinished.json()["code"]) == (409, "job_not_finished")
        folder = slow_app.state.settings.data_dir / "jobs"
        for job in (queued, running):
            assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
            assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
        deadline = time.monotonic() + 5
        while (any(folder.iterdir()) or slow_app.state.jobs.active) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(folder.iterdir()) and slow_app.state.jobs.active is None
        after = client.post("/v1/jobs", json={"folder": "leaky/../photos/more"}).json()
        assert finished(client, after["id"])["counts"]["done"] == 3  # the queue goes on


def test_a_job_deleted_while_watched_ends_its_stream(slow_app):
    with TestClient(slow_app) as client:
        wait_ready(client)
        job = client.post("/v1/jobs", json={"folder": "photos"}).json()

        def delete_once_running() -> None:
            while client.get(f"/v1/jobs/{job['id']}").json()["counts"]["done"] < 2:
                time.sleep(0.02)
            client.delete(f"/v1/jobs/{job['id']}")

        deleter = threading.Thread(target=delete_once_running)
        deleter.start()
        seen = events(client, job["id"])  # the test client hands over the stream once it has ended
        deleter.join()
    assert seen[0][0] == "progress" and seen[-1] == ("deleted", {"id": job["id"]})


def test_a_client_that_goes_away_ends_its_event_stream(api_settings, roots, tmp_path):
    """A queued job's stream would go on for as long as the job waits: the client leaving ends it."""
    app = create_app(api_settings.with_flags(data_dir=tmp_path / "data", job_roots=str(roots)))
    job = TestClient(app).post("/v1/jobs", json={"folder": "photos/more"}).json()  # no worker: it waits
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},  # as uvicorn's HTTP servers declare
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/v1/jobs/{job['id']}/events",
        "raw_path": f"/v1/jobs/{job['id']}/events".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def watch_then_leave() -> None:
        first_event = asyncio.Event()
        requested = False

        async def receive() -> dict:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await first_event.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message.get("body", b"").startswith(b"event: progress"):
                first_event.set()

        await asyncio.wait_for(app(scope, receive, send), 10)

    asyncio.run(watch_then_leave())
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"retry: 1000\n\n"
    assert sent[2]["body"].startswith(b"event: progress")  # then the client left, and the app returned


def test_an_event_stream_ends_after_its_time_even_if_the_job_has_not(
    api_settings, roots, tmp_path, monkeypatch
):
    monkeypatch.setattr(routes_jobs, "STREAM_MAX_S", 1.0)
    client = TestClient(create_app(api_settings.with_flags(data_dir=tmp_path / "data", job_roots=str(roots))))
    job = client.post("/v1/jobs", json={"folder": "photos/more"}).json()  # no worker: it waits
    seen = events(client, job["id"])
    assert [name for name, _ in seen] == ["progress"] and seen[0][1]["state"] == "queued"


def test_queued_jobs_wait_for_a_restart_and_the_queue_has_a_limit(api_settings, roots, tmp_path):
    settings = api_settings.with_flags(data_dir=tmp_path / "data", job_roots=str(roots), job_max_queued=2)
    idle = TestClient(create_app(settings))  # no lifespan: nothing runs, jobs only queue
    first, second = (idle.post("/v1/jobs", json={"folder": "photos/more"}) for _ in range(2))
    full = idle.post("/v1/jobs", json={"folder": "photos/more"})
    assert (first.status_code, second.status_code, full.status_code) == (202, 202, 429)
    assert full.headers["Retry-After"] == "10" and "RECOGNIZER_JOB_MAX_QUEUED" in full.json()["detail"]
    engine = idle.app.state.access.engine
    with engine.begin() as connection:  # as if a server had been killed while running it
        connection.execute(
            update(jobs_table).where(jobs_table.c.id == first.json()["id"]).values(state="running")
        )
    with TestClient(create_app(settings)) as restarted:
        wait_ready(restarted)
        for job in (first, second):
            assert finished(restarted, job.json()["id"])["counts"] == {
                "total": 3,
                "done": 3,
                "reused": 0,
                "failed": 0,
            }


def test_folder_jobs_are_off_without_roots_and_jobs_without_a_database(api_settings, tmp_path):
    no_roots = TestClient(create_app(api_settings.with_flags(data_dir=tmp_path / "a")))
    response = no_roots.post("/v1/jobs", json={"folder": "photos"})
    assert response.status_code == 409 and "RECOGNIZER_JOB_ROOTS" in response.json()["detail"]
    no_database = TestClient(create_app(api_settings.with_flags(data_dir=tmp_path / "b", history="off")))
    response = no_database.get("/v1/jobs")
    assert response.status_code == 409 and "recognizer db upgrade" in response.json()["detail"]
    assert not (tmp_path / "b" / "recognizer.db").exists()

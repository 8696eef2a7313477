"""History over HTTP, as a user meets it: every channel recorded, then listed, filtered, plotted,
exported and erased; sync durability; history off; a stale schema refused at start."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from recognizer.api import create_app
from recognizer.errors import ConfigError
from recognizer.storage import database, migrate
from tests.helpers import jpeg_bytes
from tests.integration.conftest import wait_ready

CATS = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def cat_jpeg(cat_photo) -> bytes:
    return jpeg_bytes(cat_photo, quality=92)


def _app(api_settings, tmp_path, **flags) -> TestClient:
    return TestClient(create_app(api_settings.with_flags(data_dir=tmp_path / "data", **flags)))


@pytest.fixture(scope="module")
def client(api_settings, tmp_path_factory) -> Iterator[TestClient]:
    with _app(api_settings, tmp_path_factory.mktemp("history"), history_images="thumbnail") as test_client:
        wait_ready(test_client)
        yield test_client


def _settle(client: TestClient) -> None:
    assert client.app.state.history.writer.flush(10)


def _upload(data: bytes, name: str = "cat.jpg") -> dict:
    return {"file": (name, data, "image/jpeg")}


def test_every_channel_is_recorded_with_its_source_client_and_timing(client, cat_jpeg):
    web = client.post("/v1/classify", files=_upload(cat_jpeg), headers={"X-Recognizer-Source": "web"})
    api = client.post("/v1/classify", content=cat_jpeg, headers={"Content-Type": "image/jpeg"})
    batch = client.post(
        "/v1/classify/batch", files=[("file", ("a.jpg", cat_jpeg)), ("file", ("b.pdf", b"%PDF"))]
    )
    compat = client.post("/predict", files=_upload(cat_jpeg))
    image = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [1],
        "data": [base64.b64encode(cat_jpeg).decode()],
    }
    v2 = client.post("/v2/models/efficientnet_lite0/infer", json={"inputs": [image]})
    assert {r.status_code for r in (web, api, batch, compat, v2)} == {200}
    assert web.headers["X-Recognition-Id"] == web.json()["id"]
    _settle(client)
    item = client.get(f"/v1/history/{web.json()['id']}").json()
    assert (
        item["source"] == "web" and item["client"] == "testclient" and item["predictions"][0]["label"] in CATS
    )
    assert item["width"] == 451 and item["sha256"] and set(item["timing_ms"]) == {"decode", "infer", "total"}
    assert client.get(f"/v1/history/{api.json()['id']}").json()["source"] == "api"
    sources = [row["source"] for row in client.get("/v1/history", params={"limit": 6}).json()["items"]]
    assert sorted(sources) == ["api", "batch", "batch", "compat", "v2", "web"]
    [rejected] = client.get("/v1/history", params={"errors": True}).json()["items"]
    assert (rejected["name"], rejected["error"]["type"]) == ("b.pdf", "not_an_image") and rejected["sha256"]


def test_a_rejected_upload_is_a_row_too(client):
    before = len(client.get("/v1/history", params={"errors": True}).json()["items"])
    assert client.post("/v1/classify", files=_upload(b"")).status_code == 400
    _settle(client)
    after = client.get("/v1/history", params={"errors": True}).json()["items"]
    assert len(after) == before + 1 and after[0]["error"]["type"] == "empty_image"


def test_a_thumbnail_is_kept_and_served_by_content_hash(client, cat_jpeg):
    response = client.post("/v1/classify", files=_upload(cat_jpeg, "../../etc/passwd"))
    _settle(client)
    item_id = response.json()["id"]
    assert client.get(f"/v1/history/{item_id}").json()["image"] == "thumbnail"
    image = client.get(f"/v1/history/{item_id}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(image.content)) as thumbnail:
        assert max(thumbnail.size) == 256
    stored = [p.name for p in (client.app.state.settings.data_dir / "images").rglob("*.jpg")]
    assert len(stored) == 1 and "passwd" not in stored[0]  # one file per photo, never the client's name


def test_filters_pages_and_unknown_values(client, cat_jpeg):
    for _ in range(3):
        client.post("/v1/classify", files=_upload(cat_jpeg))
    _settle(client)
    cats = client.get("/v1/history", params={"group": "cat", "limit": 2}).json()
    assert len(cats["items"]) == 2 and cats["next_cursor"]
    rest = client.get("/v1/history", params={"group": "cat", "cursor": cats["next_cursor"]}).json()["items"]
    ids = [row["id"] for row in cats["items"] + rest]
    assert len(ids) == len(set(ids)) and all(row["predictions"][0]["label"] in CATS for row in rest)
    [compat] = client.get("/v1/history", params={"source": "compat"}).json()["items"]
    wnid = compat["predictions"][0]["wnid"]
    assert client.get("/v1/history", params={"label": wnid, "source": "compat"}).json()["items"] == [compat]
    unknown = client.get("/v1/history", params={"group": "unicorns"})
    assert unknown.status_code == 422 and "known:" in unknown.json()["detail"]
    assert client.get("/v1/history", params={"cursor": "garbage"}).status_code == 422
    assert client.get("/v1/history/0123abc").status_code == 404
    assert client.get("/v1/history", params={"since": "yesterday"}).status_code == 422


def test_the_known_label_groups_are_listed(client):
    groups = {group["name"]: group["classes"] for group in client.get("/v1/groups").json()}
    assert groups["dog"] > 100 and {"cat", "vehicle", "bird"} <= groups.keys()


def test_stats_feed_the_plots(client):
    stats = client.get("/v1/history/stats", params={"bucket": "hour"}).json()
    rows = len(client.get("/v1/history", params={"limit": 500}).json()["items"])
    assert stats["total"] == rows == sum(point["count"] for point in stats["series"])
    assert stats["labels"][0]["label"] in CATS and stats["groups"][0]["group"] == "cat"
    assert stats["latency"][0]["p50_ms"] > 0


def test_exports_stream_every_matching_row(client):
    rows = client.get("/v1/history", params={"limit": 500, "errors": False}).json()["items"]
    response = client.get("/v1/history/export", params={"format": "csv", "errors": False})
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(row["id"] for row in table) == sorted(row["id"] for row in rows)
    lines = client.get("/v1/history/export", params={"format": "jsonl"}).text.splitlines()
    assert json.loads(lines[0])["id"] and len(lines) >= len(rows)
    pq = pytest.importorskip("pyarrow.parquet")
    parquet = client.get("/v1/history/export", params={"format": "parquet", "errors": False}).content
    assert pq.read_table(io.BytesIO(parquet)).num_rows == len(rows)
    assert client.get("/v1/history/export", params={"format": "xlsx"}).status_code == 422


def test_delete_by_id_by_client_and_never_everything_by_accident(client, cat_jpeg):
    response = client.post("/v1/classify", files=_upload(cat_jpeg))
    _settle(client)
    item_id = response.json()["id"]
    assert client.delete("/v1/history").status_code == 422
    assert client.delete("/v1/history", params={"id": item_id}).json() == {"deleted": 1}
    assert client.get(f"/v1/history/{item_id}").status_code == 404
    assert client.delete("/v1/history", params={"client": "testclient"}).json()["deleted"] > 0
    assert client.get("/v1/history").json()["items"] == []
    assert not list((client.app.state.settings.data_dir / "images").rglob("*.jpg"))  # erased with the rows


def test_history_off_records_nothing_and_says_so(api_settings, tmp_path, cat_jpeg):
    with _app(api_settings, tmp_path, history="off") as test_client:
        wait_ready(test_client)
        assert test_client.post("/v1/classify", files=_upload(cat_jpeg)).status_code == 200
        response = test_client.get("/v1/history")
    assert response.status_code == 409 and "RECOGNIZER_HISTORY=off" in response.json()["detail"]
    assert not (tmp_path / "data" / "recognizer.db").exists()


def test_sync_durability_answers_only_after_the_commit(api_settings, tmp_path, cat_jpeg):
    with _app(api_settings, tmp_path, history_durability="sync") as test_client:
        wait_ready(test_client)
        response = test_client.post("/v1/classify", files=_upload(cat_jpeg))
        engine = test_client.app.state.history.engine
        with engine.connect() as connection:  # no flush: the row must already be there
            found = connection.execute(
                text("SELECT count(*) FROM recognitions WHERE uid = :uid"), {"uid": response.json()["id"]}
            ).scalar()
    assert found == 1


def test_a_stale_schema_stops_the_start_naming_the_fix_and_migrate_fixes_it(api_settings, tmp_path):
    engine = database.make_engine(f"sqlite:///{tmp_path / 'data' / 'recognizer.db'}")
    migrate.upgrade(engine, "0001")  # an installation from before this version
    with pytest.raises(ConfigError, match="recognizer db upgrade"):
        create_app(api_settings.with_flags(data_dir=tmp_path / "data"))
    create_app(api_settings.with_flags(data_dir=tmp_path / "data", migrate=True)).state.history.close()
    assert migrate.current(engine) == migrate.head()


@pytest.mark.database
def test_postgresql_by_url_records_and_lists_the_same(api_settings, tmp_path, postgres_url, cat_jpeg):
    with _app(api_settings, tmp_path, database_url=postgres_url) as test_client:
        wait_ready(test_client)
        ids = [test_client.post("/v1/classify", files=_upload(cat_jpeg)).json()["id"] for _ in range(3)]
        _settle(test_client)
        items = test_client.get("/v1/history").json()["items"]
        stats = test_client.get("/v1/history/stats", params={"bucket": "day"}).json()
        exported = test_client.get("/v1/history/export", params={"format": "csv"}).text
    assert [item["id"] for item in items] == ids[::-1] and stats["total"] == 3
    assert len(exported.splitlines()) == 4
    assert not (tmp_path / "data" / "recognizer.db").exists()  # nothing went to SQLite

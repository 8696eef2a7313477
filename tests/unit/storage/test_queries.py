"""Reading and deleting history as the API and the page do: filters, pages, statistics, exports,
retention; on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from recognizer.errors import NotAnImageError, RequestError
from recognizer.inference.results import GroupScore, Prediction, Recognition
from recognizer.storage import export, migrate, queries, retention
from recognizer.storage.images import ImageStore
from recognizer.storage.queries import Filters
from recognizer.storage.rows import row_from
from recognizer.storage.writer import insert_rows

NOW = datetime.now(UTC).replace(microsecond=0)
CLASSES = [
    (281, "n02123045", "tabby"),
    (207, "n02099601", "golden retriever"),
    (817, "n04285008", "sports car"),
]


def _row(i: int, at: datetime, *, error: bool = False, client: str = "10.0.0.1", image: str | None = None):
    index, wnid, label = CLASSES[i % 3]
    result = Recognition("api" if i % 2 else "job:7", f"{i}.jpg", "efficientnet_lite0", "onnxruntime", at=at)
    result.client, result.size_bytes, result.sha256 = client, 1000 + i, f"{i:064x}"
    if error:
        result.error = NotAnImageError("the data is not an image")
    else:
        result.predictions = [Prediction(index, wnid, label, 0.3 + (i % 7) / 10)]
        result.groups = [GroupScore("cat", 0.9)] if label == "tabby" else None
        result.timing_ms = {"decode": 2.0, "infer": 5.0, "total": float(10 + i % 10)}
    return row_from(result, image)


@pytest.fixture
def history(engine):
    migrate.upgrade(engine)
    rows = [_row(i, NOW - timedelta(minutes=10 * i)) for i in range(30)]
    rows += [_row(100 + i, NOW - timedelta(minutes=5 + 10 * i), error=True) for i in range(3)]
    rows.append(_row(200, NOW - timedelta(days=10), client="10.9.9.9"))
    with engine.begin() as connection:
        insert_rows(connection, rows)
    return engine


def _names(items):
    return [item["name"] for item in items]


def test_filters_select_what_a_user_asks_for(history):
    def count(**kwargs):
        return len(queries.page(history, Filters(**kwargs), 500)[0])

    assert count() == 34
    assert count(label="TABB") == count(label="n02123045") == 10  # substring, any case; or the wnid
    assert count(wnids=frozenset({"n02099601", "n04285008"})) == 21  # a label group, resolved to classes
    assert count(source="job") == 18 and count(source="api") == 16  # "job" is every job:ID
    assert count(errors=True) == 3 and count(errors=False) == 31
    assert count(min_score=0.85) == sum(1 for i in range(30) if 0.3 + (i % 7) / 10 >= 0.85)
    assert count(since=NOW - timedelta(minutes=55)) == 6 + 3  # 0..50 min, and errors at 5, 15, 25 min
    assert count(until=NOW - timedelta(days=1)) == 1
    assert count(client="10.9.9.9") == 1


def test_pages_are_newest_first_and_never_repeat_or_skip_a_row(history):
    seen, cursor = [], None
    while True:
        items, cursor = queries.page(history, Filters(), 7, cursor)
        seen += items
        if cursor is None:
            break
    times = [item["created_at"] for item in seen]
    assert len(seen) == 34 == len({item["id"] for item in seen}) and times == sorted(times, reverse=True)


def test_a_forged_cursor_is_a_clear_error(history):
    with pytest.raises(RequestError, match="cursor"):
        queries.page(history, Filters(), 10, "not-a-cursor")


def test_a_row_reads_back_as_the_api_shows_it(history):
    [item], _ = queries.page(history, Filters(errors=True), 1)
    assert item["error"] == {"type": "not_an_image", "detail": "the data is not an image"}
    assert item["predictions"] == [] and item["created_at"].endswith("+00:00")
    assert queries.get(history, item["id"]) == item and queries.get(history, "nope") is None


def test_stats_count_per_hour_and_rank_labels_groups_and_latency(history):
    groups_of = {"n02123045": ("cat",), "n02099601": ("dog",), "n04285008": ("vehicle",)}
    stats = queries.stats(history, Filters(), "hour", groups_of)
    assert stats["total"] == 33 and stats["errors"] == 3  # the 10-day-old row is outside 24 h
    assert sum(point["count"] for point in stats["series"]) == 33
    assert {label["label"]: label["count"] for label in stats["labels"]} == {
        "tabby": 10,
        "golden retriever": 10,
        "sports car": 10,
    }
    assert {group["group"] for group in stats["groups"]} == {"cat", "dog", "vehicle"}
    assert all(p["p50_ms"] <= p["p95_ms"] <= p["p99_ms"] for p in stats["latency"])
    daily = queries.stats(history, Filters(), "day", groups_of)
    assert daily["total"] == 34 and len(daily["series"]) in (2, 3)


def test_csv_jsonl_and_parquet_carry_the_same_rows(history):
    rows = list(queries.rows_for_export(history, Filters(), chunk=5))
    table = list(csv.DictReader(io.StringIO(b"".join(export.encode(iter(rows), "csv")).decode())))
    lines = b"".join(export.encode(iter(rows), "jsonl")).decode().splitlines()
    assert len(table) == len(lines) == 34 and list(table[0]) == list(export.COLUMNS)
    assert [json.loads(line)["id"] for line in lines] == [row["id"] for row in table]
    pq = pytest.importorskip("pyarrow.parquet")
    parquet = pq.read_table(io.BytesIO(b"".join(export.encode(iter(rows), "parquet"))))
    assert parquet.num_rows == 34 and parquet.column_names == list(export.COLUMNS)
    assert parquet.column("id").to_pylist() == [row["id"] for row in table]


def test_a_csv_cell_that_looks_like_a_formula_is_quoted():
    item = {
        **{key: None for key in ("client", "groups", "sha256", "width", "height", "image", "error")},
        **{"id": "1", "created_at": NOW.isoformat(), "source": "api", "name": "=HYPERLINK(1)"},
        **{"model": "m", "engine": "e", "device": "cpu", "predictions": [], "timing_ms": {}},
        "size_bytes": 1,
    }
    [row] = list(csv.DictReader(io.StringIO(b"".join(export.encode([item], "csv")).decode())))
    assert row["name"] == "'=HYPERLINK(1)"


def test_retention_deletes_by_age_and_cap_with_images_that_no_row_needs(engine, tmp_path):
    migrate.upgrade(engine)
    store = ImageStore(tmp_path / "images", "thumbnail")
    shared, old_only = "a" * 64, "b" * 64
    for sha in (shared, old_only):
        store.path(sha, "thumbnail").parent.mkdir(parents=True, exist_ok=True)
        store.path(sha, "thumbnail").write_bytes(b"jpeg")
    rows = [_row(i, NOW - timedelta(days=i), image="thumbnail") for i in range(10)]
    rows[1]["sha256"] = rows[9]["sha256"] = shared  # the same photo, yesterday and 9 days ago
    rows[8]["sha256"] = old_only
    with engine.begin() as connection:
        insert_rows(connection, rows)
    assert retention.prune(engine, store, days=7.5, max_rows=None) == 2  # 8 and 9 days old
    assert store.path(shared, "thumbnail").exists() and not store.path(old_only, "thumbnail").exists()
    assert retention.prune(engine, store, days=None, max_rows=3) == 5
    newest = [item["name"] for item in queries.page(engine, Filters(), 10)[0]]
    assert newest == ["0.jpg", "1.jpg", "2.jpg"]
    assert retention.delete_where(engine, Filters(client="10.0.0.1").condition(), store) == 3
    assert not store.path(shared, "thumbnail").exists()

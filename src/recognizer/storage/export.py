"""History rows as CSV, JSON Lines or Parquet, streamed: one schema, three formats.

Columns (CSV and Parquet; JSON Lines has the API's nested shape): id, created_at (UTC, ISO 8601),
source, client, name, model, engine, device, top_index, top_wnid, top_label, top_score,
predictions, groups, decode_ms, infer_ms, total_ms, sha256, width, height, size_bytes,
error_code, error_detail, image. ``predictions``/``groups`` are JSON text in CSV and lists of
structs in Parquet. Each writer yields bytes as rows arrive, so an export of millions of rows
holds one chunk in memory, never the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from recognizer.errors import FeatureUnavailableError, RequestError

COLUMNS = (
    "id",
    "created_at",
    "source",
    "client",
    "name",
    "model",
    "engine",
    "device",
    "top_index",
    "top_wnid",
    "top_label",
    "top_score",
    "predictions",
    "groups",
    "decode_ms",
    "infer_ms",
    "total_ms",
    "sha256",
    "width",
    "height",
    "size_bytes",
    "error_code",
    "error_detail",
    "image",
)
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl",
    "parquet": "application/vnd.apache.parquet",
}
#: rows per Parquet row group (and per chunk of the other formats)
CHUNK_ROWS = 1000
#: a cell starting with one of these is a formula to a spreadsheet: quoted, so opening the CSV is safe
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def flat(item: dict[str, Any]) -> dict[str, Any]:
    """An API-shaped row (``queries.public``) as one flat record of COLUMNS."""
    top = item["predictions"][0] if item["predictions"] else {}
    error = item["error"] or {}
    timing = item["timing_ms"]
    return {
        **{key: item[key] for key in ("id", "created_at", "source", "client", "name", "model")},
        **{key: item[key] for key in ("engine", "device", "predictions", "groups", "sha256")},
        "top_index": top.get("index"),
        "top_wnid": top.get("wnid"),
        "top_label": top.get("label"),
        "top_score": top.get("score"),
        "decode_ms": timing.get("decode"),
        "infer_ms": timing.get("infer"),
        "total_ms": timing.get("total"),
        **{key: item[key] for key in ("width", "height", "size_bytes", "image")},
        "error_code": error.get("type"),
        "error_detail": error.get("detail"),
    }


def encode(rows: Iterable[dict[str, Any]], format: str) -> Iterator[bytes]:
    """The export in ``format``, as a stream of byte chunks."""
    if format == "csv":
        return _csv(rows)
    if format == "jsonl":
        return _jsonl(rows)
    if format == "parquet":
        return _parquet(rows)
    raise RequestError(f"format must be csv, jsonl or parquet, not {format!r}")


def require_format(format: str) -> None:
    """Refuse an unknown format, or Parquet without pyarrow, before any byte is sent."""
    if format not in MEDIA_TYPES:
        raise RequestError(f"format must be csv, jsonl or parquet, not {format!r}")
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise FeatureUnavailableError(
                "Parquet export needs pyarrow: pip install 'recognizer[parquet]'"
            ) from None


def _chunks(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _csv(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for chunk in _chunks(rows):
        for item in chunk:
            writer.writerow({key: _cell(value) for key, value in flat(item).items()})
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _cell(value: object) -> object:
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for chunk in _chunks(rows):
        yield "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in chunk).encode()


class _Sink(io.RawIOBase):
    """A write-only file that hands what was written to the caller between writes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def _parquet(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema(pa)
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema)
    try:
        for chunk in _chunks(rows):
            records = [
                flat(item) | {"created_at": datetime.fromisoformat(item["created_at"])} for item in chunk
            ]
            writer.write_table(pa.Table.from_pylist(records, schema=schema))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def _parquet_schema(pa: Any) -> Any:
    prediction = pa.struct(
        [("index", pa.int32()), ("wnid", pa.string()), ("label", pa.string()), ("score", pa.float64())]
    )
    group = pa.struct([("name", pa.string()), ("score", pa.float64())])
    types = {
        "created_at": pa.timestamp("us", tz="UTC"),
        "top_index": pa.int32(),
        "top_score": pa.float64(),
        "predictions": pa.list_(prediction),
        "groups": pa.list_(group),
        "decode_ms": pa.float64(),
        "infer_ms": pa.float64(),
        "total_ms": pa.float64(),
        "width": pa.int32(),
        "height": pa.int32(),
        "size_bytes": pa.int64(),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])

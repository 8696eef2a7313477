"""Rows as CSV, JSON Lines or Parquet, streamed: one :class:`Table` schema, three formats.

History exports and folder-job results share it, so both quote spreadsheet formulas the same way,
type Parquet columns the same way and hold one chunk of rows in memory, never the file. JSON Lines
keeps each row's nested shape (the API's); CSV and Parquet get the table's flat columns, with
nested values (lists of predictions, groups) as JSON text in CSV and lists of structs in Parquet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recognizer.errors import FeatureUnavailableError, RequestError

FORMATS = ("csv", "jsonl", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl",
    "parquet": "application/vnd.apache.parquet",
}
#: rows per Parquet row group (and per chunk of the other formats)
CHUNK_ROWS = 1000
#: a cell starting with one of these is a formula to a spreadsheet: quoted, so opening the CSV is safe
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    """A flat schema: its columns, how a nested row becomes one record of them, and Parquet types."""

    columns: tuple[str, ...]
    #: nested row -> {column: value}
    flatten: Callable[[Row], Row]
    #: column -> pyarrow type name: int32, int64, float64, timestamp, predictions or groups; else string
    types: dict[str, str] = field(default_factory=dict)


def encode(rows: Iterable[Row], format: str, table: Table) -> Iterator[bytes]:
    """The rows in ``format``, as a stream of byte chunks."""
    if format == "csv":
        return _csv(rows, table)
    if format == "jsonl":
        return _jsonl(rows)
    if format == "parquet":
        return _parquet(rows, table)
    raise RequestError(f"format must be csv, jsonl or parquet, not {format!r}")


def require_format(format: str) -> None:
    """Refuse an unknown format, or Parquet without pyarrow, before any byte is written."""
    if format not in MEDIA_TYPES:
        raise RequestError(f"format must be csv, jsonl or parquet, not {format!r}")
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise FeatureUnavailableError(
                "Parquet needs pyarrow: pip install 'recognizer[parquet]'"
            ) from None


def top_columns(predictions: list[Row]) -> Row:
    """The best prediction as four flat columns (empty for a rejected input)."""
    top = predictions[0] if predictions else {}
    return {f"top_{key}": top.get(key) for key in ("index", "wnid", "label", "score")}


def _chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _csv(rows: Iterable[Row], table: Table) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, table.columns, lineterminator="\n")
    writer.writeheader()
    for chunk in _chunks(rows):
        for item in chunk:
            writer.writerow({key: _cell(value) for key, value in table.flatten(item).items()})
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


def _jsonl(rows: Iterable[Row]) -> Iterator[bytes]:
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


def _parquet(rows: Iterable[Row], table: Table) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(table)
    stamps = [name for name, kind in table.types.items() if kind == "timestamp"]
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema)
    try:
        for chunk in _chunks(rows):
            records = [_typed(table.flatten(item), stamps) for item in chunk]
            writer.write_table(pa.Table.from_pylist(records, schema=schema))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def _typed(record: Row, stamps: list[str]) -> Row:
    for name in stamps:  # ISO 8601 text in the row (as in CSV and JSON) -> a real timestamp
        if isinstance(record[name], str):
            record[name] = datetime.fromisoformat(record[name])
    return record


def parquet_schema(table: Table) -> Any:
    """The table's pyarrow schema (pyarrow must be installed)."""
    import pyarrow as pa

    prediction = pa.struct(
        [("index", pa.int32()), ("wnid", pa.string()), ("label", pa.string()), ("score", pa.float64())]
    )
    types = {
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "predictions": pa.list_(prediction),
        "groups": pa.list_(pa.struct([("name", pa.string()), ("score", pa.float64())])),
    }
    return pa.schema([(name, types.get(table.types.get(name, ""), pa.string())) for name in table.columns])

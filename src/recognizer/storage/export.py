"""History rows as CSV, JSON Lines or Parquet, streamed (see :mod:`recognizer.tabular`).

Columns (CSV and Parquet; JSON Lines has the API's nested shape): id, created_at (UTC, ISO 8601),
source, client, name, model, engine, device, top_index, top_wnid, top_label, top_score,
predictions, groups, decode_ms, infer_ms, total_ms, sha256, width, height, size_bytes,
error_code, error_detail, image.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from recognizer import tabular
from recognizer.tabular import MEDIA_TYPES, require_format

__all__ = ["COLUMNS", "HISTORY", "MEDIA_TYPES", "encode", "flat", "require_format"]

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


def flat(item: dict[str, Any]) -> dict[str, Any]:
    """An API-shaped row (``queries.public``) as one flat record of COLUMNS."""
    error = item["error"] or {}
    timing = item["timing_ms"]
    return {
        **{key: item[key] for key in ("id", "created_at", "source", "client", "name", "model")},
        **{key: item[key] for key in ("engine", "device", "predictions", "groups", "sha256")},
        **tabular.top_columns(item["predictions"]),
        "decode_ms": timing.get("decode"),
        "infer_ms": timing.get("infer"),
        "total_ms": timing.get("total"),
        **{key: item[key] for key in ("width", "height", "size_bytes", "image")},
        "error_code": error.get("type"),
        "error_detail": error.get("detail"),
    }


HISTORY = tabular.Table(
    COLUMNS,
    flat,
    {
        "created_at": "timestamp",
        "top_index": "int32",
        "top_score": "float64",
        "predictions": "predictions",
        "groups": "groups",
        "decode_ms": "float64",
        "infer_ms": "float64",
        "total_ms": "float64",
        "width": "int32",
        "height": "int32",
        "size_bytes": "int64",
    },
)


def encode(rows: Iterable[dict[str, Any]], format: str) -> Iterator[bytes]:
    """The export in ``format``, as a stream of byte chunks."""
    return tabular.encode(rows, format, HISTORY)

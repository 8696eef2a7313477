"""A folder job's result rows: one schema in CSV, JSON Lines and Parquet.

One row per input, in input order. Nested (JSON Lines, and the ledger): ``file``, ``sha256``,
``size_bytes``, ``width``, ``height``, ``model``, ``engine``, ``predictions`` (list of index, wnid,
label, score), ``groups`` (list of name, score; null unless asked for), ``error`` (type, detail;
null when recognised). CSV and Parquet flatten it to :data:`COLUMNS`, adding the best prediction as
``top_*`` columns. No timings and no clock times: a row depends only on the input's bytes and the
job's settings, which is what lets an interrupted job resume into output identical to an
uninterrupted run's, and the local and Ray executors agree.
"""

from __future__ import annotations

from typing import Any

from recognizer import tabular
from recognizer.errors import RecognizerError
from recognizer.inference.results import Recognition

Row = dict[str, Any]

COLUMNS = (
    "file",
    "sha256",
    "size_bytes",
    "width",
    "height",
    "model",
    "engine",
    "top_index",
    "top_wnid",
    "top_label",
    "top_score",
    "predictions",
    "groups",
    "error_code",
    "error_detail",
)


def row_of(result: Recognition) -> Row:
    """A recognised (or rejected) input as a nested row, without its file name."""
    return {
        "sha256": result.sha256,
        "size_bytes": result.size_bytes,
        "width": result.width,
        "height": result.height,
        "model": result.model,
        "engine": result.engine,
        "predictions": [p.as_dict() for p in result.predictions],
        "groups": None if result.groups is None else [g.as_dict() for g in result.groups],
        "error": _error(result.error),
    }


def unread_row(error: RecognizerError, model: str, engine: str) -> Row:
    """An input that could not even be read (or was refused by size): no hash, no pixels."""
    return {
        "sha256": None,
        "size_bytes": None,
        "width": None,
        "height": None,
        "model": model,
        "engine": engine,
        "predictions": [],
        "groups": None,
        "error": _error(error),
    }


def _error(error: RecognizerError | None) -> dict[str, str] | None:
    return None if error is None else {"type": error.code, "detail": str(error)}


def flat(row: Row) -> Row:
    error = row["error"] or {}
    return {
        **{key: row[key] for key in ("file", "sha256", "size_bytes", "width", "height", "model", "engine")},
        **tabular.top_columns(row["predictions"]),
        "predictions": row["predictions"],
        "groups": row["groups"],
        "error_code": error.get("type"),
        "error_detail": error.get("detail"),
    }


RESULTS = tabular.Table(
    COLUMNS,
    flat,
    {
        "size_bytes": "int64",
        "width": "int32",
        "height": "int32",
        "top_index": "int32",
        "top_score": "float64",
        "predictions": "predictions",
        "groups": "groups",
    },
)

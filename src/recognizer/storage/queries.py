"""Reading history: filtered pages with a cursor, one row, statistics, and rows for export.

One :class:`Filters` object serves the list, the statistics, the export and deletion, so "what
the page shows" and "what the export contains" can never disagree. Pagination is keyset-based
(newest first, on ``created_at`` then ``id``): a page costs the same at row 10 and at row
10 million, and rows arriving meanwhile never shift or repeat a page.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Engine, Row, and_, func, or_, select, true
from sqlalchemy.sql.elements import literal_column

from recognizer.errors import RequestError
from recognizer.storage.tables import recognitions as t

#: the most rows a percentile is computed from (the newest in the range); a bound on memory
LATENCY_SAMPLE = 200_000
#: how far back statistics look when no ``since`` is given
DEFAULT_SPAN = {"hour": timedelta(days=1), "day": timedelta(days=30)}


@dataclass(frozen=True)
class Filters:
    """What to select; None means "any". ``wnids`` is a label group already resolved to its classes."""

    label: str | None = None
    wnids: frozenset[str] | None = None
    model: str | None = None
    source: str | None = None
    client: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_score: float | None = None
    #: True: only rejected inputs; False: only recognised ones
    errors: bool | None = None
    ids: tuple[str, ...] | None = None

    def condition(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if self.label:
            label = self.label.strip()
            parts.append(or_(t.c.top_wnid == label, t.c.top_label.icontains(label, autoescape=True)))
        if self.wnids is not None:
            parts.append(t.c.top_wnid.in_(sorted(self.wnids)))
        for column, value in ((t.c.model, self.model), (t.c.client, self.client)):
            if value:
                parts.append(column == value)
        if self.source:  # "job" matches every job:ID, "stream" every stream:NAME
            parts.append(or_(t.c.source == self.source, t.c.source.startswith(f"{self.source}:")))
        if self.since is not None:
            parts.append(t.c.created_at >= _utc(self.since))
        if self.until is not None:
            parts.append(t.c.created_at < _utc(self.until))
        if self.min_score is not None:
            parts.append(t.c.top_score >= self.min_score)
        if self.errors is not None:
            parts.append(t.c.error_code.is_not(None) if self.errors else t.c.error_code.is_(None))
        if self.ids is not None:
            parts.append(t.c.uid.in_(self.ids))
        return and_(true(), *parts)

    @property
    def selects_anything(self) -> bool:
        """Whether any filter is set (a DELETE with none would erase everything)."""
        return any(value is not None and value != "" for value in vars(self).values())


# -- one row, as the API shows it ---------------------------------------------------------------------


def public(row: Row[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as the API and JSON Lines export show it."""
    r = row._mapping if isinstance(row, Row) else row
    error = {"type": r["error_code"], "detail": r["error_detail"]} if r["error_code"] else None
    timing = {k: r[f"{k}_ms"] for k in ("decode", "infer", "total") if r[f"{k}_ms"] is not None}
    return {
        "id": r["uid"],
        "created_at": _utc(r["created_at"]).isoformat(),
        "source": r["source"],
        "client": r["client"],
        "name": r["name"],
        "model": r["model"],
        "engine": r["engine"],
        "device": r["device"],
        "predictions": r["predictions"] or [],
        "groups": r["groups"],
        "timing_ms": timing,
        "sha256": r["sha256"],
        "width": r["width"],
        "height": r["height"],
        "size_bytes": r["size_bytes"],
        "error": error,
        "image": r["image"],
    }


def get(engine: Engine, uid: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.uid == uid)).first()
    return public(row) if row is not None else None


# -- pages --------------------------------------------------------------------------------------------


def page(
    engine: Engine, filters: Filters, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` rows, newest first, after ``cursor``; and the cursor of the next page."""
    condition = filters.condition()
    if cursor:
        at, row_id = _decode_cursor(cursor)
        condition = and_(condition, or_(t.c.created_at < at, and_(t.c.created_at == at, t.c.id < row_id)))
    query = select(t).where(condition).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit + 1)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    more, rows = len(rows) > limit, rows[:limit]
    following = _encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
    return [public(row) for row in rows], following


def _encode_cursor(at: datetime, row_id: int) -> str:
    text = f"{_utc(at).isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, row_id = text.split("|")
        return _utc(datetime.fromisoformat(at)), int(row_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise RequestError("cursor is not one this server handed out; start again without it") from None


def rows_for_export(engine: Engine, filters: Filters, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """Every matching row, oldest first, fetched ``chunk`` at a time (bounded memory)."""
    condition, last_id = filters.condition(), None
    while True:
        query = select(t).where(condition if last_id is None else and_(condition, t.c.id > last_id))
        with engine.connect() as connection:
            rows = connection.execute(query.order_by(t.c.id).limit(chunk)).all()
        if not rows:
            return
        yield from (public(row) for row in rows)
        last_id = rows[-1].id


# -- statistics -----------------------------------------------------------------------------------------


def stats(
    engine: Engine,
    filters: Filters,
    bucket: str,
    groups_of: Mapping[str, tuple[str, ...]] | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """Counts per time bucket, the top labels and groups, and latency percentiles per bucket.

    ``groups_of`` maps a wnid to the label groups it belongs to: groups are counted from each
    row's top class, so rows recorded without ``groups`` on count too.
    """
    if bucket not in DEFAULT_SPAN:
        raise RequestError(f"bucket must be hour or day, not {bucket!r}")
    since = filters.since or datetime.now(UTC) - DEFAULT_SPAN[bucket]
    filters = Filters(**(vars(filters) | {"since": since}))
    condition, start = filters.condition(), _bucket_start(engine, bucket)
    with engine.connect() as connection:
        series = connection.execute(
            select(
                start.label("start"),
                func.count().label("count"),
                func.count(t.c.error_code).label("errors"),
            )
            .where(condition)
            .group_by(start)
            .order_by(start)
        ).all()
        by_class = connection.execute(
            select(t.c.top_wnid, t.c.top_label, func.count().label("count"))
            .where(condition, t.c.top_wnid.is_not(None))
            .group_by(t.c.top_wnid, t.c.top_label)
        ).all()
        timings = connection.execute(
            select(start.label("start"), t.c.total_ms)
            .where(condition, t.c.error_code.is_(None), t.c.total_ms.is_not(None))
            .order_by(t.c.created_at.desc())
            .limit(LATENCY_SAMPLE)
        ).all()
    return {
        "bucket": bucket,
        "since": _utc(since).isoformat(),
        "until": _utc(filters.until).isoformat() if filters.until else None,
        "total": sum(row.count for row in series),
        "errors": sum(row.errors for row in series),
        "series": [
            {"start": _bucket_iso(row.start), "count": row.count, "errors": row.errors} for row in series
        ],
        "labels": _top_labels(by_class, top),
        "groups": _top_groups(by_class, groups_of or {}, top),
        "latency": _latency(timings),
    }


def _top_labels(by_class: list[Row[Any]], top: int) -> list[dict[str, Any]]:
    counts: Counter[tuple[str, str]] = Counter()
    for row in by_class:  # a class renamed by --labels between runs is still one class
        counts[(row.top_wnid, row.top_label)] += row.count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0][1]))[:top]
    return [{"wnid": wnid, "label": label, "count": count} for (wnid, label), count in ranked]


def _top_groups(
    by_class: list[Row[Any]], groups_of: Mapping[str, tuple[str, ...]], top: int
) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    for row in by_class:
        for group in groups_of.get(row.top_wnid, ()):
            counts[group] += row.count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [{"group": name, "count": count} for name, count in ranked]


def _latency(timings: list[Row[Any]]) -> list[dict[str, Any]]:
    by_start: dict[str, list[float]] = {}
    for row in timings:
        by_start.setdefault(_bucket_iso(row.start), []).append(row.total_ms)
    out = []
    for start in sorted(by_start):
        values = np.asarray(by_start[start])
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        out.append(
            {
                "start": start,
                "count": len(values),
                "p50_ms": round(float(p50), 2),
                "p95_ms": round(float(p95), 2),
                "p99_ms": round(float(p99), 2),
            }
        )
    return out


def _bucket_start(engine: Engine, bucket: str) -> ColumnElement[Any]:
    """The start of each row's hour or day as text (UTC), in the database's own dialect."""
    if engine.dialect.name == "postgresql":
        unit = literal_column(f"'{bucket}'")
        return func.to_char(
            func.date_trunc(unit, func.timezone("UTC", t.c.created_at)), 'YYYY-MM-DD"T"HH24:00:00'
        )
    pattern = "%Y-%m-%dT%H:00:00" if bucket == "hour" else "%Y-%m-%dT00:00:00"
    return func.strftime(pattern, t.c.created_at)


def _bucket_iso(value: str) -> str:
    return f"{value}+00:00"


def _utc(value: datetime) -> datetime:
    """Aware UTC: SQLite hands back naive datetimes (stored as UTC), callers may pass local ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

"""Recognition history: list, one row and its image, statistics, export, deletion.

Every route that selects rows takes the same filters (label or wnid, group, model, source, client,
time range, minimum score, errors only), so the page's table, its plots and its export buttons all
show the same rows. Database work runs on worker threads, never on the event loop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from recognizer.api.deps import history_of, pipeline_of, settings_of
from recognizer.api.guard import require
from recognizer.api.problems import responses_for
from recognizer.api.schemas import DeleteResult, GroupInfo, HistoryItem, HistoryPage, HistoryStats
from recognizer.errors import NotFoundError, RequestError
from recognizer.inference.loading import load_vocabulary
from recognizer.storage import export, queries, retention
from recognizer.storage.images import media_type
from recognizer.storage.queries import Filters

router = APIRouter(prefix="/v1/history", tags=["history"])

TIME: dict[str, Any] = {"max_length": 40, "json_schema_extra": {"format": "date-time"}}
RowId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$")]
READ = require("history:read")
#: what history routes answer besides 200: history off (409), bad filters (422)
ERRORS = responses_for(409, 422)


def filters(
    request: Request,
    label: Annotated[str | None, Query(max_length=255, description="top-1 label (substring) or wnid")] = None,
    group: Annotated[str | None, Query(max_length=64, description="label group of the top-1 class")] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    source: Annotated[
        str | None, Query(max_length=64, description="web, api, batch, compat, v2, cli, job, stream:NAME")
    ] = None,
    client: Annotated[str | None, Query(max_length=128, description="API key id or address")] = None,
    since: Annotated[
        str | None, Query(description="from this time (ISO 8601; UTC if no offset)", **TIME)
    ] = None,
    until: Annotated[str | None, Query(description="before this time (ISO 8601)", **TIME)] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1, description="top-1 score at least")] = None,
    errors: Annotated[bool | None, Query(description="true: only rejected inputs; false: none")] = None,
) -> Filters:
    wnids = None
    if group:
        members = group_members(request)
        if group not in members:
            raise RequestError(f"unknown label group {group!r}; known: {', '.join(sorted(members))}")
        wnids = members[group]
    return Filters(label, wnids, model, source, client, _time(since), _time(until), min_score, errors)


def _time(value: str | None) -> datetime | None:
    """ISO 8601 only: a bare number is not taken for a Unix time, as pydantic's lax mode would."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{value!r} is not an ISO 8601 time such as 2026-11-24T08:00:00Z") from None


Selected = Annotated[Filters, Depends(filters)]


@router.get("", response_model=HistoryPage, responses=ERRORS, dependencies=[READ])
async def list_history(
    request: Request,
    selected: Selected,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="from the previous page")] = None,
) -> dict[str, Any]:
    """Recognitions, newest first, a page at a time."""
    engine = history_of(request).engine
    items, following = await run_in_threadpool(queries.page, engine, selected, limit, cursor)
    return {"items": items, "next_cursor": following}


@router.get("/stats", response_model=HistoryStats, responses=ERRORS, dependencies=[READ])
async def history_stats(
    request: Request,
    selected: Selected,
    bucket: Literal["hour", "day"] = "hour",
    top: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Counts per hour or day, top labels and groups, latency percentiles: what the plots draw.
    Without ``since``, the last 24 hours (hour) or 30 days (day)."""
    engine, groups = history_of(request).engine, groups_by_class(request)
    return await run_in_threadpool(queries.stats, engine, selected, bucket, groups, top)


@router.get(
    "/export",
    dependencies=[READ],
    response_class=StreamingResponse,
    responses={
        200: {"content": {media: {"schema": {"type": "string"}} for media in export.MEDIA_TYPES.values()}},
        **ERRORS,
    },
)
async def export_history(
    request: Request, selected: Selected, format: Literal["csv", "jsonl", "parquet"] = "csv"
) -> StreamingResponse:
    """Every matching row, oldest first, streamed as CSV, JSON Lines or Parquet."""
    export.require_format(format)
    engine = history_of(request).engine
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        export.encode(queries.rows_for_export(engine, selected), format),  # iterated on a thread
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="recognizer-history-{stamp}.{format}"'},
    )


@router.delete("", response_model=DeleteResult, responses=ERRORS, dependencies=[require("history:delete")])
async def delete_history(
    request: Request,
    selected: Selected,
    id: Annotated[list[str] | None, Query(max_length=500, description="row ids (repeatable)")] = None,
    all: Annotated[bool, Query(description="required to delete every row")] = False,
) -> dict[str, int]:
    """Delete rows by id, time range, client (erasure) or any filter, with images no row needs."""
    if id:
        selected = Filters(**(vars(selected) | {"ids": tuple(id)}))
    if not selected.selects_anything and not all:
        raise RequestError("name what to delete (id, since/until, client, ...), or pass all=true")
    history = history_of(request)
    deleted = await run_in_threadpool(
        retention.delete_where, history.engine, selected.condition(), history.images
    )
    return {"deleted": deleted}


@router.get("/{id}", response_model=HistoryItem, responses=responses_for(404, 409, 422), dependencies=[READ])
async def history_item(request: Request, id: RowId) -> dict[str, Any]:
    """One recognition."""
    item = await run_in_threadpool(queries.get, history_of(request).engine, id)
    if item is None:
        raise NotFoundError(f"no recognition {id} in the history (deleted, or never recorded)")
    return item


@router.get(
    "/{id}/image",
    dependencies=[READ],
    response_class=FileResponse,
    responses={200: {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}}
    | responses_for(404, 409, 422),
)
async def history_image(request: Request, id: RowId) -> FileResponse:
    """The stored thumbnail or original (RECOGNIZER_HISTORY_IMAGES), by content hash."""
    history = history_of(request)
    item = await run_in_threadpool(queries.get, history.engine, id)
    if item is None or not item["image"] or not item["sha256"]:
        raise NotFoundError(f"no stored image for recognition {id} (images are kept only when asked)")
    path = history.images.path(item["sha256"], item["image"])
    if not path.is_file():
        raise NotFoundError(f"the image of recognition {id} is no longer stored")
    return FileResponse(
        path,
        media_type=await run_in_threadpool(media_type, path),
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


groups_router = APIRouter(prefix="/v1", tags=["v1"])


@groups_router.get("/groups", response_model=list[GroupInfo], dependencies=[require("classify")])
async def label_groups(request: Request) -> list[dict[str, Any]]:
    """The label groups this server knows (built-in, or its --groups file): what ``?groups=true``
    scores and what history's ``group`` filter accepts."""
    members = group_members(request)
    return [{"name": name, "classes": len(wnids)} for name, wnids in sorted(members.items())]


def group_members(request: Request) -> dict[str, frozenset[str]]:
    """Label group -> the wnids it holds (built-in groups, or the server's --groups file)."""
    state = request.app.state
    if getattr(state, "group_members", None) is None:
        spec = pipeline_of(request).default_choice.spec
        labels, groups = load_vocabulary(spec, settings_of(request))
        state.group_members = {
            name: frozenset(labels[index].wnid for index in indices)
            for name, indices in groups.describe().items()
        }
    return state.group_members


def groups_by_class(request: Request) -> dict[str, tuple[str, ...]]:
    """wnid -> the label groups it belongs to."""
    by_class: dict[str, list[str]] = {}
    for name, wnids in group_members(request).items():
        for wnid in wnids:
            by_class.setdefault(wnid, []).append(name)
    return {wnid: tuple(sorted(names)) for wnid, names in by_class.items()}

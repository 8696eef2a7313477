"""Folder jobs over HTTP: submit (a zip, or a folder under the allowed roots), watch, download,
delete. The jobs themselves run in :mod:`recognizer.jobs.service`, on the server's own pipeline.

Every route needs the ``jobs`` scope. Database and ledger reads run on worker threads, never on
the event loop; results stream from the job's ledger, so a 100,000-row job is never in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from recognizer import tabular
from recognizer.api import job_uploads, sse
from recognizer.api.deps import client_of, jobs_of
from recognizer.api.guard import require
from recognizer.api.problems import redact, responses_for
from recognizer.api.routes_v1 import Groups, TopK
from recognizer.api.schemas import BINARY, JobFolder, JobInfo, JobList, upload_body
from recognizer.errors import JobNotFinishedError, NotFoundError
from recognizer.jobs import schema
from recognizer.jobs.service import JobManager
from recognizer.storage import jobs as store

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JOBS = require("jobs")
JobId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$")]
#: failed inputs listed by GET /v1/jobs/{id}; the results file has them all
ERRORS_SHOWN = 20
#: Server-Sent Events: a progress event at most this often, and again after this long unchanged
EVENT_EVERY_S = 0.5
HEARTBEAT_S = 15.0
#: a stream ends after this long even if its job has not (see recognizer.api.sse)
STREAM_MAX_S = 60.0
FINAL_STATES = (store.DONE, store.FAILED)

SUBMIT_BODY = upload_body({"application/zip": BINARY, "application/json": JobFolder.model_json_schema()})


@router.post(
    "",
    status_code=202,
    response_model=JobInfo,
    dependencies=[JOBS],
    openapi_extra=SUBMIT_BODY,
    responses=responses_for(403, 404, 409, 413, 415, 422, 429),
)
async def submit_job(
    request: Request, response: Response, top_k: TopK = None, groups: Groups = None
) -> dict[str, Any]:
    """Queue a job over a zip of images (multipart field ``file``, or the zip as the body) or over a
    folder on the server (JSON ``{"folder": ...}``, inside RECOGNIZER_JOB_ROOTS). Jobs run one at a
    time, in order; the answer is the queued job, and ``Location`` is where to watch it."""
    jobs = jobs_of(request)
    options, client = {"top_k": top_k, "groups": groups}, client_of(request)
    if job_uploads.is_json(request):
        folder = _folder(await job_uploads.read_json(request))
        row = await jobs.add_folder(folder, options, client)
    else:
        limit = jobs.settings.jobs.max_upload_bytes
        row = await jobs.add_upload(
            lambda target: job_uploads.receive_zip(request, target, limit), options, client
        )
    response.headers["Location"] = f"{router.prefix}/{row['id']}"
    return job_json(row, [])


def _folder(body: Any) -> str:
    try:
        return JobFolder.model_validate(body).folder
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None


@router.get("", response_model=JobList, dependencies=[JOBS], responses=responses_for(409, 422))
async def list_jobs(
    request: Request,
    state: Literal["queued", "running", "done", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Jobs, newest first, with their counts."""
    rows = await jobs_of(request).newest(limit, state)
    return {"items": [job_json(row) for row in rows]}


@router.get("/{id}", response_model=JobInfo, dependencies=[JOBS], responses=responses_for(404, 409, 422))
async def job_status(request: Request, id: JobId) -> dict[str, Any]:
    """State, counts (total, done, reused, failed), images/s, times and the first failed inputs."""
    jobs = jobs_of(request)
    row = await _found(jobs, id)
    errors = await run_in_threadpool(lambda: list(jobs.rows(row, errors_only=True, limit=ERRORS_SHOWN)))
    return job_json(row, [_error(item) for item in errors])


@router.get(
    "/{id}/events",
    dependencies=[JOBS],
    response_class=StreamingResponse,
    responses=sse.OPENAPI | responses_for(404, 409, 422),
)
async def job_events(request: Request, id: JobId) -> StreamingResponse:
    """Server-Sent Events: ``progress`` (the job's summary) at most twice a second while it changes,
    then one ``done`` or ``failed`` (or ``deleted``) event, and the stream ends. A stream also ends
    after a minute, without a final event: EventSource reconnects by itself; others ask again."""
    jobs = jobs_of(request)
    await _found(jobs, id)
    return sse.response(_events(jobs, id))


async def _events(jobs: JobManager, job_id: str) -> AsyncIterator[str]:
    """Ends with the job (or after STREAM_MAX_S); a client that goes away cancels it at its next
    sleep (Starlette listens for the disconnect)."""
    last: dict[str, Any] | None = None
    quiet = 0.0
    yield sse.RETRY
    for _ in range(int(STREAM_MAX_S / EVENT_EVERY_S)):
        row = await jobs.view(job_id)
        if row is None:
            yield sse.event("deleted", {"id": job_id})
            return
        summary = job_json(row)
        if row["state"] in FINAL_STATES:
            yield sse.event(row["state"], summary)
            return
        if summary != last or quiet >= HEARTBEAT_S:
            yield sse.event("progress", summary)
            last, quiet = summary, 0.0
        await asyncio.sleep(EVENT_EVERY_S)
        quiet += EVENT_EVERY_S


@router.get(
    "/{id}/results",
    dependencies=[JOBS],
    response_class=StreamingResponse,
    responses={
        200: {"content": {media: {"schema": {"type": "string"}} for media in tabular.MEDIA_TYPES.values()}},
        **responses_for(404, 409, 422),
    },
)
async def job_results(
    request: Request, id: JobId, format: Literal["csv", "jsonl", "parquet"] = "csv"
) -> StreamingResponse:
    """The finished job's rows, in input order, as CSV, JSON Lines or Parquet: the schema of
    ``recognizer batch`` (docs/jobs.md), with files named by their path in the zip or folder."""
    tabular.require_format(format)
    jobs = jobs_of(request)
    row = await _found(jobs, id)
    if row["state"] != store.DONE:
        raise JobNotFinishedError(f"job {id} is {row['state']}: its results come once it is done")
    return StreamingResponse(
        tabular.encode(jobs.rows(row), format, schema.RESULTS),  # iterated on a worker thread
        media_type=tabular.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="job-{id}.{format}"'},
    )


@router.delete("/{id}", status_code=204, dependencies=[JOBS], responses=responses_for(404, 409, 422))
async def delete_job(request: Request, id: JobId) -> Response:
    """Cancel a queued or running job, or forget a finished one: its record, upload, ledger and
    results are removed (what it recorded in the history stays)."""
    if not await jobs_of(request).delete(id):
        raise NotFoundError(f"no job {id} (deleted, or never submitted)")
    return Response(status_code=204)


async def _found(jobs: JobManager, job_id: str) -> dict[str, Any]:
    row = await jobs.view(job_id)
    if row is None:
        raise NotFoundError(f"no job {job_id} (deleted, or never submitted)")
    return row


def job_json(row: dict[str, Any], errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A job's row as clients see it (a folder job's real path stays on the server)."""
    shown = {
        "id": row["id"],
        "state": row["state"],
        "kind": row["kind"],
        "input": row["input"],
        "options": row["options"],
        "client": row["client"],
        **{key: _time(row[key]) for key in ("created_at", "started_at", "finished_at")},
        "counts": {key: row[key] for key in ("total", "done", "reused", "failed")},
        "images_per_s": row["rate"],
        "message": redact(row["message"]) if row["message"] else None,
    }
    return shown if errors is None else shown | {"errors": errors}


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _error(row: dict[str, Any]) -> dict[str, str]:
    return {"file": row["file"], "type": row["error"]["type"], "detail": row["error"]["detail"]}

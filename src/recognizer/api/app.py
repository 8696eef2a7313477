"""The ASGI app factory: ``create_app(settings)``; ``create_app_from_env`` for multi-worker servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from recognizer import __version__
from recognizer.api import (
    docs,
    problems,
    routes_history,
    routes_jobs,
    routes_ops,
    routes_session,
    routes_streams,
    routes_v1,
    routes_v2,
    routes_webcam,
)
from recognizer.api.guard import Access, public
from recognizer.api.limits import BodyLimits
from recognizer.api.middleware import GuardAndMeasure
from recognizer.api.security import SecurityHeaders
from recognizer.config import Settings
from recognizer.inference.hooks import Hook, Hooks
from recognizer.inference.pipeline import Pipeline
from recognizer.jobs.service import JobManager
from recognizer.observability.metrics import Metrics, MetricsHook
from recognizer.storage.history import History, open_database
from recognizer.streams.service import StreamManager

#: why /v1/jobs answers 409
_NO_DATABASE = (
    "folder jobs are kept in the database, and this server has none (RECOGNIZER_HISTORY=off "
    "and no database yet): create it with `recognizer db upgrade`, or serve with history on"
)
_NO_JOBS_HERE = (
    "folder jobs do not run on Ray Serve replicas (their uploads and ledgers live on one machine's "
    "disk): use `recognizer batch SRC --ray`, or a plain `recognizer serve`"
)


def create_app(
    settings: Settings | None = None,
    pipeline: Pipeline | None = None,
    hooks: tuple[Hook, ...] = (),
    run_jobs: bool = True,
) -> FastAPI:
    """The service: ``pipeline`` defaults to one built from ``settings``; the metrics hook, the
    history writer (unless ``--history off``) and ``hooks`` are added to it. Opening history checks
    the database schema, so a stale one stops the start here, with the command that fixes it.
    ``run_jobs=False`` (Ray Serve replicas) answers the folder-job routes with 409."""
    settings = settings or Settings()
    metrics = Metrics()
    if pipeline is None:
        pipeline = Pipeline(settings, Hooks(), on_batch=metrics.observe_batch)
    else:
        pipeline.on_batch = pipeline.on_batch or metrics.observe_batch
    database = open_database(settings)
    history = (
        History(settings, metrics.observe_history_write, database)
        if database is not None and settings.history.mode == "on"
        else None
    )
    recorder: tuple[Hook, ...] = (history.writer,) if history else ()
    for hook in (MetricsHook(metrics), *recorder, *hooks):
        pipeline.hooks.add(hook)
    metrics.watch_hooks(pipeline.hooks)
    if history is not None:
        metrics.watch_history(history.writer)
    jobs = JobManager(settings, pipeline, database) if database is not None and run_jobs else None
    streams = StreamManager(settings, pipeline, database) if run_jobs else None
    if streams is not None:
        metrics.watch_streams(streams)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pipeline.start()
        if jobs is not None:
            jobs.start()  # runs jobs once the model is ready, those a previous run left first
        if streams is not None:
            streams.start()  # the streams the database holds start again
        try:
            yield
        finally:
            if streams is not None:
                await streams.stop()
            if jobs is not None:
                await jobs.stop()  # before the pipeline: a running job stops and resumes next start
            await pipeline.stop()  # closes the hooks: the history queue is written out here
            if history is not None:
                await asyncio.to_thread(history.close)
            if database is not None:
                database.dispose()

    app = FastAPI(
        title="recognizer",
        version=__version__,
        summary="Offline ImageNet-1K image recognition.",
        lifespan=lifespan,
        docs_url=None,  # served below from installed assets: the default pages load them from a CDN
        redoc_url=None,
    )
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.history = history
    app.state.jobs = jobs
    app.state.streams = streams
    app.state.jobs_unavailable = _NO_DATABASE if run_jobs else _NO_JOBS_HERE
    app.state.access = Access(settings, database)
    metrics.watch_limiter(app.state.access.limiter)
    problems.install(app)
    app.add_middleware(GuardAndMeasure, limits=BodyLimits.from_settings(settings), metrics=metrics)
    origins = [origin.strip() for origin in settings.auth.cors_origins.split(",") if origin.strip()]
    if origins:  # off by default: only listed origins may call the API from a browser
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-Id"],
            expose_headers=["X-Request-Id", "X-Recognition-Id", "Retry-After", "RateLimit-Remaining"],
        )
    app.add_middleware(SecurityHeaders, tls=bool(settings.server.ssl_certfile))  # outermost
    for module in (
        routes_v1,
        routes_v2,
        routes_ops,
        routes_history,
        routes_jobs,
        routes_streams,
        routes_session,
    ):
        app.include_router(module.router)
    app.include_router(routes_history.groups_router)
    routes_webcam.install(app)  # WS /v1/streams/webcam (see install: not an included router)
    docs.install(app)  # before the page: its /static/api-docs mount must win over /static
    _install_ui(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` / gunicorn workers: settings from RECOGNIZER_* variables."""
    return create_app(Settings())


def _install_ui(app: FastAPI) -> None:
    static = resources.files("recognizer.ui") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    index = (static / "index.html").read_text("utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False, dependencies=[public])
    async def home() -> HTMLResponse:
        return HTMLResponse(index)

    favicon = (static / "favicon.svg").read_bytes()

    @app.get("/favicon.ico", include_in_schema=False, dependencies=[public])
    async def favicon_ico() -> Response:
        return Response(favicon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

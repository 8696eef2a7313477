"""The ASGI app factory: ``create_app(settings)``; ``create_app_from_env`` for multi-worker servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from recognizer import __version__
from recognizer.api import docs, problems, routes_ops, routes_v1, routes_v2
from recognizer.api.limits import BodyLimits
from recognizer.api.middleware import GuardAndMeasure
from recognizer.config import Settings
from recognizer.inference.hooks import Hook, Hooks
from recognizer.inference.pipeline import Pipeline
from recognizer.observability.metrics import Metrics, MetricsHook


def create_app(
    settings: Settings | None = None, pipeline: Pipeline | None = None, hooks: tuple[Hook, ...] = ()
) -> FastAPI:
    """The service: ``pipeline`` defaults to one built from ``settings``; ``hooks`` are added to it
    after the metrics hook (history and alerts attach here)."""
    settings = settings or Settings()
    metrics = Metrics()
    if pipeline is None:
        pipeline = Pipeline(settings, Hooks(), on_batch=metrics.observe_batch)
    else:
        pipeline.on_batch = pipeline.on_batch or metrics.observe_batch
    for hook in (MetricsHook(metrics), *hooks):
        pipeline.hooks.add(hook)
    metrics.watch_hooks(pipeline.hooks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pipeline.start()
        yield
        await pipeline.stop()

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
    problems.install(app)
    app.add_middleware(GuardAndMeasure, limits=BodyLimits.from_settings(settings), metrics=metrics)
    for module in (routes_v1, routes_v2, routes_ops):
        app.include_router(module.router)
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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(index)

    favicon = (static / "favicon.svg").read_bytes()

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon_ico() -> Response:
        return Response(favicon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

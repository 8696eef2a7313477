"""The ASGI app factory: ``create_app(settings)``; ``create_app_from_env`` for multi-worker servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from recognizer import __version__
from recognizer.api import problems, routes_ops, routes_v1, routes_v2
from recognizer.api.middleware import GuardAndMeasure
from recognizer.config import Settings
from recognizer.inference.service import RecognitionService

#: multipart framing on top of the image bytes themselves
ENVELOPE_BYTES = 64 * 1024


def create_app(settings: Settings | None = None, service: RecognitionService | None = None) -> FastAPI:
    settings = settings or Settings()
    service = service or RecognitionService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        await service.stop()

    app = FastAPI(
        title="recognizer",
        version=__version__,
        summary="Offline ImageNet-1K image recognition.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    problems.install(app)
    max_body = settings.max_image_bytes * routes_v1.MAX_BATCH_FILES + ENVELOPE_BYTES
    app.add_middleware(GuardAndMeasure, max_body_bytes=max_body, metrics=service.metrics)
    for module in (routes_v1, routes_v2, routes_ops):
        app.include_router(module.router)
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

"""What routes take from the app: the recognition pipeline and the settings built at start-up."""

from __future__ import annotations

from fastapi import Request

from recognizer.config import Settings
from recognizer.errors import FeatureUnavailableError
from recognizer.inference.pipeline import Pipeline
from recognizer.jobs.service import JobManager
from recognizer.storage.history import History


def pipeline_of(request: Request) -> Pipeline:
    return request.app.state.pipeline


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def history_of(request: Request) -> History:
    history = request.app.state.history
    if history is None:
        raise FeatureUnavailableError("recognition history is off on this server (RECOGNIZER_HISTORY=off)")
    return history


def jobs_of(request: Request) -> JobManager:
    jobs = request.app.state.jobs
    if jobs is None:
        raise FeatureUnavailableError(request.app.state.jobs_unavailable)
    return jobs


def client_of(request: Request) -> str | None:
    """Who is asking, for history rows: ``key:ID``, ``user:NAME``, or the address."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal.client
    return request.client.host if request.client else None


#: the only value the page's own requests may claim in X-Recognizer-Source; anything else is "api"
PAGE_SOURCE = "web"


def source_of(request: Request, default: str = "api") -> str:
    return PAGE_SOURCE if request.headers.get("x-recognizer-source") == PAGE_SOURCE else default

"""The one place where errors become HTTP responses: RFC 9457 problem+json.

Routes raise :mod:`recognizer.errors` exceptions and never build error responses themselves.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from recognizer import errors

log = logging.getLogger("recognizer.api")

#: most specific first; the first isinstance match wins
STATUS_BY_ERROR: tuple[tuple[type[errors.RecognizerError], int], ...] = (
    (errors.EmptyImageError, 400),
    (errors.CorruptImageError, 400),
    (errors.NotAnImageError, 415),
    (errors.ImageTooLargeError, 413),
    (errors.UnsupportedMediaError, 415),
    (errors.RequestError, 422),
    (errors.UnknownModelError, 404),
    (errors.NotReadyError, 503),
    (errors.WeightsNotFoundError, 503),
    (errors.EngineUnavailableError, 503),
    (errors.ImageError, 400),
    (errors.RecognizerError, 500),
)

TITLES = {
    400: "Bad image",
    404: "Not found",
    405: "Method not allowed",
    413: "Image too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal error",
    503: "Service unavailable",
}


def status_for(exc: errors.RecognizerError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(exc, kind))


def problem_body(
    status: int, code: str, detail: str, instance: str = "", **extra: object
) -> dict[str, object]:
    body: dict[str, object] = {
        "type": f"urn:recognizer:problem:{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        # Open Inference Protocol (v2) clients read a plain "error" member.
        "error": detail,
    }
    if instance:
        body["instance"] = instance
    return body | extra


def problem(status: int, code: str, detail: str, instance: str = "", **extra: object) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(
        problem_body(status, code, detail, instance, **extra),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def error_problem(exc: errors.RecognizerError, instance: str = "") -> JSONResponse:
    return problem(status_for(exc), exc.code, str(exc), instance)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.RecognizerError)
    async def _recognizer_error(request: Request, exc: errors.RecognizerError) -> JSONResponse:
        if status_for(exc) == 500:
            log.error("request %s failed: %s", request.url.path, exc)
        return error_problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [{"location": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{i['location']}: {i['message']}" for i in issues)
        return problem(422, "invalid_parameters", detail, request.url.path, errors=issues)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, f"http_{exc.status_code}", str(exc.detail), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return problem(500, "internal_error", "the server failed unexpectedly; see its log", request.url.path)

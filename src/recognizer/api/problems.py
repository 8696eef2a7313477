"""The one place where errors become HTTP responses: RFC 9457 problem+json.

Routes raise :mod:`recognizer.errors` exceptions and never build error responses themselves. The
same table documents every route's error responses in the OpenAPI document (``responses_for``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from recognizer import errors

log = logging.getLogger("recognizer.api")

PROBLEM_JSON = "application/problem+json"
#: a path under a filesystem root, as error messages name files on the server (the API's own
#: routes, /v1/..., are not under one of these)
_SERVER_PATH = re.compile(
    r"(?<![\w.:/])/(?:root|home|tmp|var|usr|opt|etc|srv|mnt|media|data|work|run|proc|nix|Users)"
    r"(?:/[^\s;,'\"()]+)+"
)
#: nginx's code for "the client closed the connection before the answer": what metrics count
CLIENT_CLOSED = 499
#: seconds a client should wait before retrying a 503 (the model is still loading)
RETRY_AFTER_S = 1

#: most specific first; the first isinstance match wins
STATUS_BY_ERROR: tuple[tuple[type[errors.RecognizerError], int], ...] = (
    (errors.EmptyImageError, 400),
    (errors.CorruptImageError, 400),
    (errors.NotAnImageError, 415),
    (errors.ImageTooLargeError, 413),
    (errors.UnreadableFileError, 400),  # a folder job's row; never an HTTP upload's answer
    (errors.UnsupportedMediaError, 415),
    (errors.RequestTooLargeError, 413),
    (errors.NotFoundError, 404),
    (errors.FeatureUnavailableError, 409),
    (errors.PathNotAllowedError, 403),
    (errors.JobNotFinishedError, 409),
    (errors.JobQueueFullError, 429),
    (errors.StreamExistsError, 409),
    (errors.TooManyStreamsError, 429),
    (errors.RequestError, 422),
    (errors.UnknownModelError, 404),
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.RateLimitedError, 429),
    # The Open Inference Protocol's readiness probes answer "no" with a 4xx, not a server error.
    (errors.ModelNotLoadedError, 400),
    (errors.NotReadyError, 503),
    # Registered but not installed here: retrying will not help until an operator acts.
    (errors.WeightsNotFoundError, 409),
    (errors.EngineUnavailableError, 409),
    (errors.ImageError, 400),
    (errors.RecognizerError, 500),
)

#: titles by error kind first (most specific first), then by status for everything else
TITLES_BY_ERROR: tuple[tuple[type[errors.RecognizerError], str], ...] = (
    (errors.ImageTooLargeError, "Image too large"),
    (errors.RequestTooLargeError, "Request too large"),
    (errors.ImageError, "Bad image"),
    (errors.UnsupportedMediaError, "Unsupported media type"),
    (errors.NotFoundError, "Not found"),
    (errors.FeatureUnavailableError, "Not available"),
    (errors.HistoryUnavailableError, "History unavailable"),
    (errors.BadArchiveError, "Bad archive"),
    (errors.PathNotAllowedError, "Forbidden"),
    (errors.JobNotFinishedError, "Not finished"),
    (errors.JobQueueFullError, "Too many jobs"),
    (errors.BadSourceError, "Bad stream source"),
    (errors.StreamExistsError, "Stream exists"),
    (errors.TooManyStreamsError, "Too many streams"),
    (errors.RequestError, "Invalid request"),
    (errors.UnknownModelError, "Unknown model"),
    (errors.WeightsNotFoundError, "Model not installed"),
    (errors.EngineUnavailableError, "Engine not available"),
    (errors.NotReadyError, "Not ready"),
    (errors.AuthenticationError, "Unauthorized"),
    (errors.PermissionDeniedError, "Forbidden"),
    (errors.RateLimitedError, "Too many requests"),
)
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Not available",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Internal error",
    503: "Service unavailable",
}


def status_for(exc: errors.RecognizerError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(exc, kind))


def title_for(exc: errors.RecognizerError) -> str:
    return next((title for kind, title in TITLES_BY_ERROR if isinstance(exc, kind)), TITLES[status_for(exc)])


def problem_body(
    status: int, code: str, detail: str, instance: str = "", title: str | None = None, **extra: object
) -> dict[str, object]:
    body: dict[str, object] = {
        "type": f"urn:recognizer:problem:{code}",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        # Open Inference Protocol (v2) clients read a plain "error" member.
        "error": detail,
    }
    if instance:
        body["instance"] = instance
    return body | extra


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str = "",
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, instance, title, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def public_detail(exc: errors.RecognizerError) -> str:
    """What a client may read: ``exc.public`` if set, else the message with server paths cut to their
    last part ("looked for .../resnet18-f37072fd.pth"); the log keeps the full message."""
    return exc.public or redact(str(exc))


def redact(text: str) -> str:
    """``text`` with server paths cut to their last part (for messages kept and shown later, too)."""
    return _SERVER_PATH.sub(lambda m: ".../" + m.group(0).rsplit("/", 1)[1], text)


def error_body(exc: errors.RecognizerError, instance: str = "") -> dict[str, object]:
    return problem_body(status_for(exc), exc.code, public_detail(exc), instance, title_for(exc))


def error_problem(
    exc: errors.RecognizerError, instance: str = "", request_id: str | None = None
) -> JSONResponse:
    status = status_for(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    if status == 413:  # stop reading what a client may still be sending
        headers = {"Connection": "close"}
    headers |= exc.headers or {}
    body = error_body(exc, instance) | ({"request_id": request_id} if request_id else {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.RecognizerError)
    async def _recognizer_error(request: Request, exc: errors.RecognizerError) -> JSONResponse:
        rid = request_id_of(request)
        if status_for(exc) >= 500:
            log.error("[%s] %s %s: %s", rid, request.method, request.url.path, exc)
        elif public_detail(exc) != str(exc):  # the client got a redacted detail: keep the full one here
            log.info("[%s] %s %s: %s", rid, request.method, request.url.path, exc)
        return error_problem(exc, request.url.path, rid)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [{"location": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()[:5]]
        detail = "; ".join(f"{i['location']}: {i['message']}" for i in issues)
        if len(exc.errors()) > len(issues):
            detail += f"; and {len(exc.errors()) - len(issues)} more"
        return problem(422, "invalid_parameters", detail, request.url.path, errors=issues, **_rid(request))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route on the path; name them all
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path))
        return problem(
            exc.status_code,
            f"http_{exc.status_code}",
            str(exc.detail),
            request.url.path,
            headers=headers,
            **_rid(request),
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        log.info(
            "%s %s: the client closed the connection before the request was read",
            request.method,
            request.url.path,
        )
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id_of(request)
        log.exception("[%s] unexpected error on %s", rid, request.url.path)
        detail = f"the server failed unexpectedly; see its log (request {rid})"
        return problem(500, "internal_error", detail, request.url.path, **_rid(request))


def request_id_of(request: Request) -> str | None:
    """The id the security middleware gave this request (also its X-Request-Id header)."""
    return getattr(request.state, "request_id", None)


def _rid(request: Request) -> dict[str, str]:
    rid = request_id_of(request)
    return {"request_id": rid} if rid else {}


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at ``path`` (GET and DELETE on /v1/history, say)."""
    from recognizer.api.route_table import endpoints

    routes = list(endpoints(app))
    # A fixed path wins over a parameter that would match it too (/v1/streams/events is not the
    # stream named "events"), as it does when requests are routed.
    fixed = [route for route in routes if route.path == path]
    methods: set[str] = set()
    for route in fixed or routes:
        if route.path_regex.match(path):
            methods |= set(route.methods or ())
    return sorted(methods)


def responses_for(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for a route's problem statuses, from this module's tables."""
    return {
        status: {
            "description": TITLES[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }

"""The API's documentation pages, offline, and an OpenAPI document that describes the errors too.

FastAPI's default ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN, which leaves a
blank page on an offline machine; the same files ship in the ``fastapi-offline`` package and are
served from there. The problem+json schema that every documented error response refers to is
added to the generated document here.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from recognizer.api.guard import public
from recognizer.api.problems import PROBLEM_JSON, TITLES

ASSETS = "/static/api-docs"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable identifier, e.g. not_an_image"},
        "error": {"type": "string", "description": "the detail again, for Open Inference Protocol clients"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def install(app: FastAPI) -> None:
    assets = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="api-docs")

    @app.get("/docs", include_in_schema=False, dependencies=[public])
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url="/favicon.ico",
        )

    @app.get("/redoc", include_in_schema=False, dependencies=[public])
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url="/favicon.ico",
            with_google_fonts=False,
        )
        # ReDoc's bundle always asks a CDN for its own logo; an offline page must not try.
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            document["components"]["securitySchemes"] = SECURITY_SCHEMES
            scopes = _scopes(app)
            for path, path_item in document["paths"].items():
                for method, operation in path_item.items():
                    if scopes.get((method.upper(), path)) is not None:
                        _guarded(operation)
                    _errors_as_problems(operation["responses"])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


#: how a caller proves who it is; ``{}`` in an operation's list: the server may run open
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key (rk_...)"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _scopes(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """(METHOD, path) -> the scope its route requires (None: public)."""
    from recognizer.api.guard import Requirement
    from recognizer.api.route_table import endpoints

    found: dict[tuple[str, str], str | None] = {}
    for route in endpoints(app):
        needs = [d.call for d in route.dependant.dependencies if isinstance(d.call, Requirement)]
        for method in route.methods or ():
            found[(method, route.path)] = needs[0].scope if needs else None
    return found


def _guarded(operation: dict[str, Any]) -> None:
    """What the guard may answer on a route that needs a scope: 401, 403, 429, and 503 while the
    rate limiter's store is unreachable and limits fail closed."""
    for status in ("401", "403", "429", "503"):
        operation["responses"].setdefault(status, {"description": TITLES[int(status)]})
    operation["security"] = [{"bearer": []}, {"apiKey": []}, {}]


def _errors_as_problems(responses: dict[str, Any]) -> None:
    """Every error response is problem+json (FastAPI documents its 422 as plain JSON), and every
    operation may meet the guard's refusals: a body over its route's limit, oversized headers."""
    for status in ("413", "431"):
        responses.setdefault(status, {"description": TITLES[int(status)]})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            response["description"] = TITLES.get(int(status), response.get("description", "Error"))

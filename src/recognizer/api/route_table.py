"""Every endpoint the app serves, flattened: FastAPI wraps included routers (``_IncludedRouter``),
so ``app.routes`` alone does not list them. Used to name all methods in a 405's ``Allow`` and by
the authorization test that walks every route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


def endpoints(app: FastAPI) -> Iterator[Any]:
    """APIRoute-like objects (``path``, ``methods``, ``path_regex``, ``dependant``) of every route."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "effective_candidates"):  # a router included with include_router
            yield from route.effective_candidates()

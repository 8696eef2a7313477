"""Logging in to the web page: ``POST /v1/session`` sets the session cookie, ``GET`` says who is
logged in (and hands the page its CSRF token), ``DELETE`` logs out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from recognizer.api.guard import access_of, limit, public
from recognizer.api.problems import responses_for
from recognizer.auth import users
from recognizer.auth.sessions import COOKIE, MAX_AGE_S
from recognizer.errors import AuthenticationError

router = APIRouter(prefix="/v1/session", tags=["session"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionInfo(BaseModel):
    user: str | None = Field(None, description="the logged-in user, if any")
    role: str | None = None
    scopes: list[str] = Field(description="what this caller may do")
    csrf_token: str | None = Field(None, description="send as X-CSRF-Token on state-changing requests")
    login_required: bool = Field(description="whether this server needs credentials")


@router.get("", response_model=SessionInfo, dependencies=[public])
async def session(request: Request) -> dict[str, Any]:
    """Who this browser is logged in as; the page calls it first."""
    access = access_of(request)
    try:
        principal = await run_in_threadpool(access.principal, request)
    except AuthenticationError:
        principal = None
    found = principal is not None and principal.kind == "user"
    role = None
    if found and access.engine is not None:
        role = (await run_in_threadpool(users.get, access.engine, principal.id)).role  # type: ignore[union-attr]
    return {
        "user": principal.id if found else None,  # type: ignore[union-attr]
        "role": role,
        "scopes": sorted(principal.scopes) if principal else [],
        "csrf_token": principal.csrf if found else None,  # type: ignore[union-attr]
        "login_required": access.enforced,
    }


@router.post(
    "", response_model=SessionInfo, responses=responses_for(400, 401, 422, 429, 503), dependencies=[public]
)
async def login(request: Request, response: Response, body: Login) -> dict[str, Any]:
    """Check the password (Argon2id), then set a signed, HttpOnly, SameSite=Strict cookie."""
    access = access_of(request)
    address = request.client.host if request.client else "unknown"
    for who in (f"account:{body.username}", f"address:{address}"):
        await limit(access.limiter, who, "login", 1, access.login_limit)
    user = None
    if access.engine is not None:
        user = await run_in_threadpool(users.authenticate, access.engine, body.username, body.password)
    if user is None:
        raise AuthenticationError("wrong user name or password")
    cookie, session = access.sessions.issue(user.name, user.session_epoch)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=access.tls,
        path="/",
    )
    return {
        "user": user.name,
        "role": user.role,
        "scopes": sorted(user.scopes),
        "csrf_token": session.csrf,
        "login_required": access.enforced,
    }


@router.delete("", status_code=204, dependencies=[public])
async def logout(request: Request) -> Response:
    """End the user's sessions on the server (a copied cookie stops working too), and drop the cookie."""
    access = access_of(request)
    session = access.sessions.read(request.cookies.get(COOKIE))
    if session is not None and access.engine is not None:
        await run_in_threadpool(users.end_sessions, access.engine, session.user)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=access_of(request).tls)
    return response

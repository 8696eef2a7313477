"""Who may call what: every route declares one scope (``require("classify")``) or ``public``.

A request's credentials are, in order: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``;
else the web page's session cookie (then a state-changing request must also carry the session's
CSRF token in ``X-CSRF-Token``); else nothing, which is an anonymous caller with every scope
while the server runs open (loopback with no keys or users, or ``--allow-anonymous``), and a 401
otherwise. A principal without the route's scope gets a 403; one over its rate limit a 429.
Route tests (``tests/integration/test_authorization.py``) walk the app's route table and fail
any route that declares neither.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from fastapi import Depends, Request, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from recognizer.auth import keys, users
from recognizer.auth.principal import Principal
from recognizer.auth.ratelimit import Decision, RateLimiter, parse_policy, parse_rate
from recognizer.auth.scopes import ANONYMOUS_SCOPES
from recognizer.auth.sessions import COOKIE, CSRF_HEADER, Sessions, load_secret
from recognizer.config import Settings
from recognizer.errors import AuthenticationError, CsrfError, PermissionDeniedError

#: how long a worker trusts "no keys or users exist" (the first key created starts enforcement
#: in every worker within this many seconds, without a restart)
MODE_CACHE_S = 2.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="recognizer"'}


class Access:
    """The app's access state: verifiers, sessions and limits, built once at start."""

    def __init__(self, settings: Settings, engine: Engine | None) -> None:
        options = settings.auth
        self.mode, self.engine = options.enforce, engine
        self.loopback = is_loopback(settings.server.host)
        self.allow_anonymous = options.allow_anonymous
        self.metrics_open = options.metrics == "open" or (options.metrics == "auto" and self.loopback)
        self.tls = bool(settings.server.ssl_certfile)
        self.keys = keys.KeyVerifier(engine) if engine is not None else None
        self.sessions = Sessions(load_secret(options.secret_key, settings.data_dir))
        self.limiter = RateLimiter(
            parse_policy(options.rate_limits), options.redis_url, options.rate_limit_failure == "open"
        )
        self.login_limit = options.login_rate_limit
        parse_rate(self.login_limit, "RECOGNIZER_LOGIN_RATE_LIMIT")  # not a 500 on every login
        self._configured: tuple[float, bool] = (0.0, False)

    @property
    def enforced(self) -> bool:
        """Whether callers must bring credentials (see the module docstring)."""
        if self.mode == "on":
            return True
        if self.mode == "off" or self.engine is None:
            return False
        return self._credentials_exist() or not (self.loopback or self.allow_anonymous)

    def _credentials_exist(self) -> bool:
        checked, found = self._configured
        if time.monotonic() - checked > MODE_CACHE_S:
            assert self.engine is not None
            found = users.any_configured(self.engine) or keys.KeyVerifier(self.engine).any_configured()
            self._configured = (time.monotonic(), found)
        return found

    def principal(self, request: Request) -> Principal:
        token = _presented_key(request)
        if token is not None:
            found = self.keys.verify(token) if self.keys is not None else None
            if found is None:
                raise AuthenticationError(
                    "the API key is not valid (wrong, revoked or expired)", headers=CHALLENGE
                )
            return found
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is not None and self.engine is not None:
            user = users.principal(self.engine, session.user, session.epoch)
            if user is not None:
                return Principal("user", user.id, user.scopes, via_cookie=True, csrf=session.csrf)
        address = request.client.host if request.client else "unknown"
        if not self.enforced:
            return Principal("anonymous", address, ANONYMOUS_SCOPES)
        raise AuthenticationError(
            "this server needs credentials: send an API key (Authorization: Bearer ... or X-API-Key), "
            "or log in on the web page",
            headers=CHALLENGE,
        )


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return header  # a malformed header is a bad key, not an anonymous call
    return request.headers.get("x-api-key")


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def access_of(request: Request) -> Access:
    return request.app.state.access


@dataclass(frozen=True)
class Requirement:
    """A route's declared need: one scope, or none (``public``). Found by the route-table test."""

    scope: str | None

    async def __call__(self, request: Request, response: Response) -> Principal | None:
        if self.scope is None:
            return None
        if self.scope == "metrics" and access_of(request).metrics_open:
            return None
        access = access_of(request)
        principal = access.principal(request)
        if self.scope not in principal.scopes:
            raise PermissionDeniedError(
                f"{principal.client} may not use this route: it needs the {self.scope!r} scope"
            )
        if principal.via_cookie and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not principal.csrf or not hmac.compare_digest(sent, principal.csrf):
                raise CsrfError(
                    f"missing or wrong {CSRF_HEADER}: the page sends the token from GET /v1/session"
                )
        decision = await limit(access.limiter, principal.client, self.scope, 1, principal.rate_limit)
        if decision is not None:
            response.headers.update(decision.headers())
        request.state.principal = principal
        return principal


async def limit(
    limiter: RateLimiter, who: str, scope: str, cost: int, override: str | None = None
) -> Decision | None:
    """``limiter.hit``, off the event loop when it asks Redis (a slow or hung Redis, 0.5-s timeouts,
    must not stall every request), inline when there is nothing to count or only memory."""
    if not limiter.applies(scope, override):
        return None
    if not limiter.remote:
        return limiter.hit(who, scope, cost, override)
    return await run_in_threadpool(limiter.hit, who, scope, cost, override)


def require(scope: str) -> object:
    """``dependencies=[require("classify")]`` on a route."""
    return Depends(Requirement(scope))


#: for routes anyone may call (health, the page, login); declared, so the route test knows
public = Depends(Requirement(None))


async def charge(request: Request, scope: str, extra: int, response: Response | None = None) -> None:
    """Charge ``extra`` more units (a batch of N images costs N: the guard charged 1); the
    RateLimit fields of ``response`` then say what is left after all N."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None and extra > 0:
        decision = await limit(
            access_of(request).limiter, principal.client, scope, extra, principal.rate_limit
        )
        if decision is not None and response is not None:
            response.headers.update(decision.headers())

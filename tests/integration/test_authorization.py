"""Who may call what, generated from the app's own route table: every route × every kind of
caller, against the status a user should see. A route that declares no scope fails here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from recognizer.api import create_app
from recognizer.api.guard import Requirement
from recognizer.api.route_table import endpoints
from recognizer.auth import keys, users
from recognizer.auth.scopes import ROLE_SCOPES, SCOPES
from recognizer.storage.tables import api_keys

FILL = {"name": "efficientnet_lite0", "id": "0123abcd", "version": "1"}
SAFE = {"GET", "HEAD", "OPTIONS"}


def requirement(route) -> Requirement | None:
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Requirement)]
    return found[0] if len(found) == 1 else None


@pytest.fixture(scope="module")
def secured(api_settings, tmp_path_factory):
    data = tmp_path_factory.mktemp("auth")
    flags = {"data_dir": data, "auth": "on", "login_rate_limit": "10000/minute"}
    app = create_app(api_settings.with_flags(**flags))
    app.state.access.metrics_open = False  # as off loopback: /metrics needs its scope
    engine = app.state.access.engine
    tokens = {scope: keys.create(engine, f"only {scope}", scope)[1] for scope in SCOPES}
    revoked_info, tokens["revoked"] = keys.create(engine, "revoked", ",".join(SCOPES))
    keys.revoke(engine, revoked_info.key_id)
    expired_info, tokens["expired"] = keys.create(engine, "expired", ",".join(SCOPES))
    with engine.begin() as connection:
        connection.execute(
            update(api_keys)
            .where(api_keys.c.key_id == expired_info.key_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    tokens["wrong"] = "rk_000000000000_" + "x" * 43
    for role in ROLE_SCOPES:
        users.add(engine, role, f"{role}-password", role)
    return app, tokens


def _call(client: TestClient, method: str, path: str, **kwargs):
    return client.request(method, path.format(**FILL), **kwargs)


def _login(client: TestClient, name: str) -> str:
    response = client.post("/v1/session", json={"username": name, "password": f"{name}-password"})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def test_every_route_declares_its_scope_or_that_it_is_public(secured):
    app, _ = secured
    routes = list(endpoints(app))
    undeclared = [route.path for route in routes if requirement(route) is None]
    assert routes and not undeclared, f"routes without require(...) or public: {undeclared}"
    declared = {requirement(route).scope for route in routes}
    assert declared <= {None, *SCOPES}


def test_the_authorization_matrix(secured):
    app, tokens = secured
    wrong: list[str] = []
    cases = 0
    client = TestClient(app, raise_server_exceptions=False)
    sessions = {role: TestClient(app, raise_server_exceptions=False) for role in ROLE_SCOPES}
    csrf = {role: _login(session, role) for role, session in sessions.items()}
    for route in endpoints(app):
        need = requirement(route).scope
        for method in sorted(route.methods):
            expected: dict[str, set[int] | str] = {
                "none": "allowed" if need is None else {401},
                "wrong key": "allowed" if need is None else {401},
                "revoked key": "allowed" if need is None else {401},
                "expired key": "allowed" if need is None else {401},
            }
            headers = {"none": {}, "wrong key": {"X-API-Key": tokens["wrong"]}}
            headers["revoked key"] = {"Authorization": f"Bearer {tokens['revoked']}"}
            headers["expired key"] = {"Authorization": f"Bearer {tokens['expired']}"}
            for scope in SCOPES:
                name = f"key:{scope}"
                headers[name] = {"Authorization": f"Bearer {tokens[scope]}"}
                expected[name] = "allowed" if need in (None, scope) else {403}
            for label, sent in headers.items():
                status = _call(client, method, route.path, headers=sent).status_code
                cases += 1
                if not _matches(status, expected[label]):
                    wrong.append(f"{method} {route.path} [{label}] -> {status}, expected {expected[label]}")
            for role, session in sessions.items():
                allowed = need is None or need in ROLE_SCOPES[role]
                for with_csrf in (False, True):
                    sent = {"X-CSRF-Token": csrf[role]} if with_csrf else {}
                    if not allowed:
                        want: set[int] | str = {403}
                    elif method not in SAFE and need is not None and not with_csrf:
                        want = {403}
                    else:
                        want = "allowed"
                    status = _call(session, method, route.path, headers=sent).status_code
                    cases += 1
                    if route.path == "/v1/session":  # logging in or out changed this client's cookie
                        csrf[role] = _login(session, role)
                    if not _matches(status, want):
                        wrong.append(
                            f"{method} {route.path} [session {role}, csrf={with_csrf}] -> {status}, "
                            f"expected {want}"
                        )
    print(f"authorization matrix: {cases} cases")
    assert not wrong, "\n".join(wrong)


def _matches(status: int, expected: set[int] | str) -> bool:
    if expected == "allowed":
        return status not in (401, 403)
    return status in expected  # type: ignore[operator]


def test_a_401_names_the_fix_and_challenges_and_a_403_names_the_scope(secured):
    app, tokens = secured
    client = TestClient(app)
    response = client.get("/v1/history")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert "API key" in response.json()["detail"] and response.json()["request_id"]
    denied = client.get("/v1/history", headers={"X-API-Key": tokens["classify"]})
    assert denied.status_code == 403 and "history:read" in denied.json()["detail"]


def test_logging_out_ends_the_session_on_the_server_too(secured):
    client = TestClient(secured[0])
    _login(client, "viewer")
    cookie = client.cookies.get("recognizer_session")
    assert client.get("/v1/history").status_code == 200
    assert client.delete("/v1/session").status_code == 204
    copied = TestClient(secured[0], cookies={"recognizer_session": cookie})
    assert copied.get("/v1/history").status_code == 401  # a copy of the old cookie is worthless


def test_health_never_needs_credentials(secured):
    client = TestClient(secured[0], raise_server_exceptions=False)
    for path in ("/healthz", "/v2/health/live"):
        assert client.get(path).status_code == 200
    assert client.get("/readyz").status_code in (200, 503)  # no credentials asked, ready or not


def test_revocation_takes_effect_without_a_restart(secured, monkeypatch):
    app, _ = secured
    engine = app.state.access.engine
    info, token = keys.create(engine, "short-lived", "history:read")
    client = TestClient(app)
    assert client.get("/v1/history", headers={"X-API-Key": token}).status_code == 200
    keys.revoke(engine, info.key_id)
    monkeypatch.setattr(keys, "CACHE_S", 0.0)  # the cache would hold it for up to 2 s
    assert client.get("/v1/history", headers={"X-API-Key": token}).status_code == 401


def test_a_rotated_key_works_beside_its_successor_until_the_grace_ends(secured, monkeypatch):
    app, _ = secured
    engine = app.state.access.engine
    monkeypatch.setattr(keys, "CACHE_S", 0.0)
    old, old_token = keys.create(engine, "rotating", "history:read")
    new, new_token = keys.rotate(engine, old.key_id, timedelta(hours=1))
    client = TestClient(app)
    for token in (old_token, new_token):
        assert client.get("/v1/history", headers={"X-API-Key": token}).status_code == 200
    keys.rotate(engine, new.key_id, timedelta(seconds=0))
    assert client.get("/v1/history", headers={"X-API-Key": new_token}).status_code == 401


def test_history_rows_name_the_key_not_just_the_address(secured, cat_photo):
    from tests.helpers import jpeg_bytes

    app, tokens = secured
    with TestClient(app) as client:
        from tests.integration.conftest import wait_ready

        wait_ready(client)
        key_id = tokens["classify"].split("_")[1]
        response = client.post(
            "/v1/classify",
            files={"file": ("cat.jpg", jpeg_bytes(cat_photo))},
            headers={"X-API-Key": tokens["classify"]},
        )
        assert response.status_code == 200
        app.state.history.writer.flush(10)
        item = client.get(
            f"/v1/history/{response.json()['id']}", headers={"X-API-Key": tokens["history:read"]}
        )
    assert item.json()["client"] == f"key:{key_id}"


def test_security_headers_on_every_response(secured):
    client = TestClient(secured[0], raise_server_exceptions=False)
    for path in ("/", "/healthz", "/v1/history", "/nope"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Request-Id"]
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"


def test_cors_is_off_by_default_and_allows_only_listed_origins(secured, api_settings, tmp_path):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    closed = TestClient(secured[0]).options("/v1/classify", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    app = create_app(api_settings.with_flags(data_dir=tmp_path, cors_origins="https://app.example"))
    client = TestClient(app)
    allowed = client.options("/v1/classify", headers=preflight | {"Origin": "https://app.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in client.options("/v1/classify", headers=preflight).headers

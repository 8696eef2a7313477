"""Rate limits as a caller meets them, in one process (memory storage): N allowed, then a 429
problem with Retry-After and the RateLimit-* fields; a batch of N images costs N; a key's own
limit; login attempts limited per account and per address. No request answers 500.

Each test uses its own key, user or client address: the limits are per principal, so the tests
do not spend each other's allowance on the shared app."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from recognizer.api import create_app
from recognizer.auth import keys, users
from recognizer.errors import ConfigError
from tests.helpers import jpeg_bytes
from tests.integration.conftest import wait_ready

LIMIT = 5
LOGIN_LIMIT = 3
PROBLEM = "application/problem+json"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
#: every status any test here saw: none may be a 5xx
SEEN: Counter[int] = Counter()


@pytest.fixture(scope="module")
def app(api_settings, tmp_path_factory):
    flags = {
        "data_dir": tmp_path_factory.mktemp("limits"),
        "rate_limits": f"classify={LIMIT}/minute",
        "login_rate_limit": f"{LOGIN_LIMIT}/minute",
    }
    app = create_app(api_settings.with_flags(**flags))
    assert app.state.access.limiter.storage is None  # counted in this process
    return app


@pytest.fixture(scope="module")
def client(app):
    """The app with its model loaded (batches need it); most tests only touch /v1/models."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        wait_ready(test_client)
        yield test_client
    assert SEEN and not [status for status in SEEN if status >= 500], f"statuses seen: {dict(SEEN)}"


def new_key(app, scopes: str = "classify", rate_limit: str | None = None) -> dict[str, str]:
    _, token = keys.create(app.state.access.engine, "limits test", scopes, rate_limit=rate_limit)
    return {"Authorization": f"Bearer {token}"}


def call(client: TestClient, method: str, path: str, **kwargs):
    response = client.request(method, path, **kwargs)
    SEEN[response.status_code] += 1
    return response


def assert_limited(response, limit: int) -> int:
    """A 429 as documented: problem+json, rate_limited, Retry-After, RateLimit-* with 0 left."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "rate_limited" and body["status"] == 429 and body["request_id"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(response.headers["RateLimit-Reset"]) <= 60
    return retry_after


def test_five_allowed_then_429_with_retry_after_and_ratelimit_headers(app, client):
    key = new_key(app)
    remaining = []
    for _ in range(LIMIT):
        response = call(client, "GET", "/v1/models", headers=key)
        assert response.status_code == 200, response.text
        assert response.headers["RateLimit-Limit"] == str(LIMIT)
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    for _ in range(3):  # refused calls cost nothing, and stay refused
        assert_limited(call(client, "GET", "/v1/models", headers=key), LIMIT)
    # the limit is the key's: another key, and a scope with no limit, are untouched
    assert call(client, "GET", "/v1/models", headers=new_key(app)).headers["RateLimit-Remaining"] == "4"
    history = call(client, "GET", "/v1/history", headers=new_key(app, "classify,history:read"))
    assert history.status_code == 200 and "RateLimit-Limit" not in history.headers


def test_classify_is_charged_like_any_classify_route(app, client, cat_photo):
    key = new_key(app)
    photo = {"file": ("cat.jpg", jpeg_bytes(cat_photo), "image/jpeg")}
    for expected_left in range(LIMIT - 1, -1, -1):
        response = call(client, "POST", "/v1/classify", files=photo, headers=key)
        assert response.status_code == 200 and response.headers["RateLimit-Remaining"] == str(expected_left)
    assert_limited(call(client, "POST", "/v1/classify", files=photo, headers=key), LIMIT)
    assert_limited(call(client, "GET", "/v1/models", headers=key), LIMIT)  # one classify budget


def _batch(count: int, photo: bytes) -> list:
    return [("file", (f"{i}.jpg", photo, "image/jpeg")) for i in range(count)]


def test_a_batch_of_three_images_costs_three(app, client, cat_photo):
    key, photo = new_key(app), jpeg_bytes(cat_photo)
    first = call(client, "POST", "/v1/classify/batch", files=_batch(3, photo), headers=key)
    assert first.status_code == 200 and len(first.json()["results"]) == 3
    after = call(client, "GET", "/v1/models", headers=key)
    assert after.headers["RateLimit-Remaining"] == str(LIMIT - 3 - 1), "the batch was charged 3"
    # 1 left: a batch of 3 is refused (and charged nothing beyond the guard's unit), a single fits
    assert_limited(call(client, "POST", "/v1/classify/batch", files=_batch(3, photo), headers=key), LIMIT)
    assert_limited(call(client, "GET", "/v1/models", headers=key), LIMIT)


def test_a_batch_answer_says_what_is_left_after_the_whole_batch(app, client, cat_photo):
    key = new_key(app)
    response = call(client, "POST", "/v1/classify/batch", files=_batch(3, jpeg_bytes(cat_photo)), headers=key)
    assert response.status_code == 200
    assert response.headers["RateLimit-Remaining"] == str(LIMIT - 3)


def test_a_keys_own_limit_overrides_the_servers(app, client):
    key = new_key(app, "classify,history:read", rate_limit="2/minute")
    for left in (1, 0):
        response = call(client, "GET", "/v1/models", headers=key)
        assert response.status_code == 200 and response.headers["RateLimit-Limit"] == "2"
        assert response.headers["RateLimit-Remaining"] == str(left)
    assert_limited(call(client, "GET", "/v1/models", headers=key), 2)
    # the key's limit holds for each of its scopes, counted apart, even one the server leaves unlimited
    for _ in range(2):
        assert call(client, "GET", "/v1/history", headers=key).status_code == 200
    assert_limited(call(client, "GET", "/v1/history", headers=key), 2)
    roomy = new_key(app, rate_limit="50/minute")
    for _ in range(LIMIT + 1):
        assert call(client, "GET", "/v1/models", headers=roomy).status_code == 200
    assert call(client, "GET", "/v1/models", headers=roomy).headers["RateLimit-Limit"] == "50"


def _login(app, address: str, username: str, password: str):
    browser = TestClient(app, raise_server_exceptions=False, client=(address, 40000))  # no lifespan
    response = browser.post("/v1/session", json={"username": username, "password": password})
    SEEN[response.status_code] += 1
    return response


def test_login_attempts_are_limited_per_account_even_with_the_right_password_after(app, client):
    users.add(app.state.access.engine, "ada", "ada-password", "viewer")
    for attempt in range(LOGIN_LIMIT):  # from different addresses: the account's limit still counts
        wrong = _login(app, f"10.0.0.{attempt + 1}", "ada", "guess")
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    refused = _login(app, "10.0.0.9", "ada", "ada-password")
    assert_limited(refused, LOGIN_LIMIT)
    assert "set-cookie" not in refused.headers and "recognizer_session" not in refused.text
    # someone else's account from a fresh address is not affected
    users.add(app.state.access.engine, "bob", "bob-password", "viewer")
    assert _login(app, "10.0.1.1", "bob", "bob-password").status_code == 200


def test_login_attempts_are_limited_per_address(app, client):
    users.add(app.state.access.engine, "cy", "cy-password", "viewer")
    for name in ("mallory1", "mallory2", "mallory3"):  # a different account each time
        assert _login(app, "10.0.2.1", name, "guess").status_code == 401
    assert_limited(_login(app, "10.0.2.1", "cy", "cy-password"), LOGIN_LIMIT)
    ok = _login(app, "10.0.2.2", "cy", "cy-password")  # the same account from elsewhere
    assert ok.status_code == 200 and "recognizer_session=" in ok.headers["set-cookie"]


def test_health_and_public_routes_are_never_limited(app, client):
    key = new_key(app, rate_limit="1/minute")
    call(client, "GET", "/v1/models", headers=key)
    assert_limited(call(client, "GET", "/v1/models", headers=key), 1)
    for path in ("/healthz", "/readyz", "/v2/health/live", "/v1/session"):
        for _ in range(LIMIT + 2):
            response = call(client, "GET", path, headers=key)
            assert response.status_code == 200 and "RateLimit-Limit" not in response.headers


def test_a_malformed_rate_limit_setting_is_refused_at_start(api_settings, tmp_path):
    with pytest.raises((ConfigError, ValidationError), match="lots"):
        create_app(api_settings.with_flags(data_dir=tmp_path, rate_limits="classify=lots"))


def test_a_malformed_login_rate_limit_is_refused_at_start(api_settings, tmp_path):
    with pytest.raises((ConfigError, ValidationError), match="lots"):
        create_app(api_settings.with_flags(data_dir=tmp_path, login_rate_limit="lots"))

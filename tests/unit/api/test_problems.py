"""Errors become the right HTTP status and an RFC 9457 problem+json body, whatever raised them."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from recognizer import errors
from recognizer.api import problems

PROBLEM_JSON = "application/problem+json"

#: The deliberate decision for every class in the error tree. Adding an exception class without
#: adding it here fails test_every_error_class_has_a_deliberate_status.
EXPECTED_STATUS: dict[type[errors.RecognizerError], int] = {
    errors.RecognizerError: 500,
    errors.ConfigError: 500,
    errors.ModelError: 500,
    errors.UnknownModelError: 404,
    errors.WeightsNotFoundError: 409,  # registered, not installed: retrying will not help
    errors.WeightsIntegrityError: 500,
    errors.EngineError: 500,
    errors.EngineUnavailableError: 409,
    errors.NotReadyError: 503,
    errors.ModelNotLoadedError: 400,  # the Open Inference Protocol's readiness "no" is a 4xx
    errors.HistoryUnavailableError: 503,  # sync durability: not recorded in time; retry
    errors.RateLimiterUnavailableError: 503,  # limits fail closed, their store is away
    errors.AuthError: 500,  # abstract: only its subclasses are raised
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.CsrfError: 403,
    errors.RateLimitedError: 429,
    errors.NotFoundError: 404,
    errors.FeatureUnavailableError: 409,  # history off, pyarrow missing: an operator must act
    errors.RequestError: 422,
    errors.UnsupportedMediaError: 415,
    errors.RequestTooLargeError: 413,
    errors.BadArchiveError: 422,  # a job's zip that is broken, empty or a bomb
    errors.PathNotAllowedError: 403,  # a job's folder outside RECOGNIZER_JOB_ROOTS
    errors.JobNotFinishedError: 409,
    errors.JobQueueFullError: 429,
    errors.BadSourceError: 422,
    errors.StreamExistsError: 409,
    errors.TooManyStreamsError: 429,
    errors.ImageError: 400,
    errors.EmptyImageError: 400,
    errors.NotAnImageError: 415,
    errors.CorruptImageError: 400,
    errors.ImageTooLargeError: 413,
    errors.UnreadableFileError: 400,
}


class SomeoneElsesError(errors.RecognizerError):
    """A subclass the table has never heard of (lives in the tests, so the tree walk skips it)."""


def _error_tree(root: type[errors.RecognizerError]) -> set[type[errors.RecognizerError]]:
    found = {root}
    for child in root.__subclasses__():
        found |= _error_tree(child)
    return found


def _package_errors() -> set[type[errors.RecognizerError]]:
    return {kind for kind in _error_tree(errors.RecognizerError) if kind.__module__.startswith("recognizer")}


def test_every_error_class_has_a_deliberate_status():
    assert _package_errors() == set(EXPECTED_STATUS), (
        "an exception class was added or removed: decide its HTTP status in problems.STATUS_BY_ERROR "
        "and record the decision in EXPECTED_STATUS"
    )


@pytest.mark.parametrize("kind", list(EXPECTED_STATUS), ids=lambda kind: kind.__name__)
def test_each_error_maps_to_the_status_a_user_expects(kind):
    assert problems.status_for(kind("what happened; what to do")) == EXPECTED_STATUS[kind]


def test_an_unlisted_error_subclass_is_a_500():
    assert problems.status_for(SomeoneElsesError("?")) == 500


def test_no_status_entry_is_shadowed_by_an_earlier_more_general_one():
    kinds = [kind for kind, _ in problems.STATUS_BY_ERROR]
    shadowed = [
        (later.__name__, earlier.__name__)
        for i, earlier in enumerate(kinds)
        for later in kinds[i + 1 :]
        if issubclass(later, earlier)
    ]
    assert shadowed == [], "(never reached, reached first instead)"


def test_every_status_has_a_title():
    assert {status for _, status in problems.STATUS_BY_ERROR} <= set(problems.TITLES)


def test_problem_is_problem_json_with_all_members():
    response = problems.error_problem(errors.ImageTooLargeError("send a smaller image"), "/v1/classify")
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "retry-after" not in response.headers
    assert json.loads(response.body) == {
        "type": "urn:recognizer:problem:image_too_large",
        "title": "Image too large",
        "status": 413,
        "detail": "send a smaller image",
        "code": "image_too_large",
        "error": "send a smaller image",
        "instance": "/v1/classify",
    }


def test_only_not_ready_tells_the_client_to_retry():
    response = problems.error_problem(errors.NotReadyError("still loading"))
    assert response.headers["retry-after"] == "1"
    assert "instance" not in json.loads(response.body)
    assert "retry-after" not in problems.error_problem(errors.WeightsNotFoundError("not installed")).headers


def test_server_paths_never_reach_the_client():
    error = errors.WeightsNotFoundError(
        "no weights for resnet18: looked for /root/.cache/torch/hub/r-1.pth; fetch"
    )
    assert problems.public_detail(error) == "no weights for resnet18: looked for .../r-1.pth; fetch"
    assert (
        problems.public_detail(errors.NotAnImageError("see https://example.org/a/b"))
        == "see https://example.org/a/b"
    )


def test_problem_keeps_extra_members():
    body = json.loads(problems.problem(422, "invalid", "bad", errors=[{"location": "q"}]).body)
    assert body["errors"] == [{"location": "q"}]


# --- the installed handlers, on a tiny app -------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.get("/raise/{name}")
    async def raise_error(name: str) -> None:
        raise getattr(errors, name)(f"{name} happened; do something else")

    @app.get("/items")
    async def items(count: int = 1) -> dict[str, int]:
        return {"count": count}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret database password in here")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("kind", list(EXPECTED_STATUS), ids=lambda kind: kind.__name__)
def test_a_raised_error_becomes_its_problem(client, kind):
    response = client.get(f"/raise/{kind.__name__}")
    status = EXPECTED_STATUS[kind]
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": f"urn:recognizer:problem:{kind.code}",
        "title": problems.title_for(kind("x")),
        "status": status,
        "detail": f"{kind.__name__} happened; do something else",
        "code": kind.code,
        "error": f"{kind.__name__} happened; do something else",
        "instance": f"/raise/{kind.__name__}",
    }
    assert ("retry-after" in response.headers) == (status == 503)


def test_a_bad_query_parameter_is_a_422_listing_each_issue(client):
    response = client.get("/items", params={"count": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "invalid_parameters"
    assert body["title"] == "Invalid request"
    assert [issue["location"] for issue in body["errors"]] == ["query.count"]
    assert body["errors"][0]["message"]
    assert body["detail"].startswith("query.count: ")


def test_an_unknown_route_is_a_404_problem(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "http_404"
    assert response.json()["instance"] == "/nowhere"


def test_a_wrong_method_is_a_405_problem(client):
    response = client.delete("/items")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["title"] == "Method not allowed"


def test_a_wrong_method_says_which_methods_are_allowed(client):
    assert "GET" in client.delete("/items").headers.get("allow", "")


def test_an_unexpected_exception_is_a_500_that_leaks_nothing(client, caplog):
    with caplog.at_level(logging.ERROR, logger="recognizer.api"):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    # ...but the operator's log has the whole story.
    [record] = [r for r in caplog.records if r.name == "recognizer.api"]
    assert record.exc_info is not None
    assert "secret database password" in str(record.exc_info[1])

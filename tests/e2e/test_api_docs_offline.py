"""The API docs pages render on a machine with no internet: every request stays on the server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, Response, Route, expect, sync_playwright

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import CHROMIUM_FLAGS

pytestmark = pytest.mark.browser
ARTIFACTS = REPO_ROOT / "test-artifacts"
OPERATIONS = ["/v1/classify", "/v1/models", "/v2/models/{name}/infer"]


@dataclass
class Traffic:
    """Requests the page made: those aborted for leaving the server's origin, and the server's that failed."""

    left_origin: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


@pytest.fixture
def offline_page(chromium, server) -> Iterator[tuple[Page, Traffic]]:
    ARTIFACTS.mkdir(exist_ok=True)
    traffic = Traffic()
    home = _origin(server)

    def only_the_server(route: Route) -> None:
        url = route.request.url
        if _origin(url) == home or urlsplit(url).scheme in {"data", "blob"}:
            route.continue_()
        else:
            traffic.left_origin.append(url)
            route.abort("internetdisconnected")

    def failed(request: Request) -> None:
        if _origin(request.url) == home:  # the others are counted (and aborted) above
            traffic.failed.append(f"{request.url}: {request.failure}")

    def answered(response: Response) -> None:
        if response.status >= 400:
            traffic.failed.append(f"{response.url}: {response.status}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.route("**/*", only_the_server)
        page.on("requestfailed", failed)
        page.on("response", answered)
        yield page, traffic
        browser.close()


def test_swagger_ui_lists_the_operations_without_the_internet(offline_page, server):
    page, traffic = offline_page
    page.goto(f"{server}/docs")
    assert traffic.failed == [], "Swagger UI's files are not served"
    for path in OPERATIONS:
        # Swagger UI puts zero-width spaces between a path's segments, so match on its data-path.
        operation = page.locator(f'.opblock-summary-path[data-path="{path}"]')
        expect(operation.first).to_be_visible(timeout=30_000)
        assert operation.first.inner_text().replace("\u200b", "") == path
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "api-docs-swagger.png"))
    assert traffic.left_origin == [], "Swagger UI loaded files from outside the server"
    assert traffic.failed == [], "some of Swagger UI's files are missing"


def test_redoc_lists_the_operations_without_the_internet(offline_page, server):
    page, traffic = offline_page
    page.goto(f"{server}/redoc")
    assert traffic.failed == [], "ReDoc's files are not served"
    expect(page.get_by_text("/v1/classify", exact=True).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/v2/models/{name}/infer", exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "api-docs-redoc.png"))
    assert traffic.left_origin == [], "ReDoc loaded files from outside the server"
    assert traffic.failed == [], "some of ReDoc's files are missing"

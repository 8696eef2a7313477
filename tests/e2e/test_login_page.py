"""A person's view of logins: a server with users shows a login form instead of the tabs; an
operator classifies, finds the row in History and deletes it; a viewer may classify and read the
history but gets no Delete button, and the server refuses the delete (and a POST without the
CSRF token) with a 403 even when the page's own context asks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import test_web_page as web_page
from tests.e2e.conftest import running_server, server_env
from tests.e2e.test_web_page import ARTIFACTS, CAT_LABELS, PageLog
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.browser
# the page test's fixtures: a 1000x900 Chromium page, and what it complained about
page, page_log = web_page.page, web_page.page_log
USERS = {
    "alice": ("operator", "correct horse battery staple"),
    "victor": ("viewer", "viewer's own passphrase"),
}
# the answers the login test expects to be refusals: (path, status)
EXPECTED_FAILURES = {
    ("/v1/session", 401),  # a wrong password
    ("/v1/session", 429),  # a (stubbed) lockout
    ("/v1/history", 401),  # after logging out, and once the cookie is gone
    ("/v1/history/stats", 401),  # once the cookie is gone
    ("/v1/history", 403),  # a viewer deleting
    ("/v1/classify", 403),  # a POST without X-CSRF-Token
}
EXPECTED_CONSOLE = re.compile(
    r"^Failed to load resource: the server responded with a status of (401|403|429)\b"
)
STATUS_OF = "(url) => fetch(url).then((r) => r.status)"


@pytest.fixture
def login_server(tmp_path, artifact_cache) -> Iterator[str]:
    """A server of our own whose data dir holds two users (so it needs a login, even on loopback),
    with every history row committed before its answer (sync), so the History tab finds it at once."""
    data = {"RECOGNIZER_DATA_DIR": str(tmp_path / "data"), "RECOGNIZER_HISTORY_DURABILITY": "sync"}
    env = server_env(tmp_path / "torch-home", artifact_cache, **data)
    script = Path(sys.executable).with_name("recognizer")
    for name, (role, password) in USERS.items():
        done = subprocess.run(
            [script, "users", "add", name, "--role", role, "--password-stdin"],
            input=f"{password}\n",
            env=os.environ | env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert f"user {name} added ({role})" in done.stdout, done.stdout
    with running_server(tmp_path, env) as url:
        yield url


def log_in(page: Page, name: str, password: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def expect_login_form(page: Page) -> None:
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_label("User name")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.get_by_role("tab")).to_have_count(0)  # hidden tabs are no tabs to a screen reader
    expect(page.locator("#panel-classify")).to_be_hidden()
    expect(page.locator("#file-input")).to_be_hidden()
    expect(page.locator("#whoami")).to_be_hidden()


def signed_in_as(page: Page, name: str, role: str) -> None:
    expect(page.locator("#whoami")).to_be_visible()
    expect(page.locator("#whoami")).to_contain_text(f"Signed in as {name} ({role})")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("heading", name="Log in")).to_be_hidden()
    expect(page.get_by_role("tab")).to_have_count(3)  # Classify, History, Live


def classify(page: Page, photo: Path) -> str:
    """Upload on the Classify tab; the top label shown. The POST carries the session's CSRF token."""
    page.get_by_role("tab", name="Classify").click()
    with page.expect_response(lambda r: "/v1/classify" in r.url and r.request.method == "POST") as answer:
        page.set_input_files("#file-input", str(photo))
    assert answer.value.ok, answer.value.text()
    assert answer.value.request.header_value("x-csrf-token"), "the page's POST carries X-CSRF-Token"
    label = answer.value.json()["predictions"][0]["label"]
    expect(page.locator("#predictions .label").first).to_have_text(label, timeout=30_000)
    return label


def open_history(page: Page) -> None:
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#panel-history")).to_be_visible()


def test_users_log_in_and_their_role_decides_what_the_page_offers(
    page: Page, page_log: PageLog, login_server, cat_photo, tmp_path
):
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg_bytes(cat_photo, quality=92))
    rows = page.locator("#history-rows tr.item")
    alert = page.locator("#login-error")

    # a server with users: the login form, not the Classify tab
    page.goto(login_server)
    expect_login_form(page)
    expect(page.get_by_label("User name")).to_be_focused()
    page.screenshot(path=str(ARTIFACTS / "login.png"))

    # too many attempts: the wait the server names (Retry-After), shown as an alert
    def locked(route):
        if route.request.method != "POST":
            return route.continue_()
        body = {"title": "Too many requests", "status": 429, "detail": "rate limit for login reached"}
        return route.fulfill(
            status=429,
            content_type="application/problem+json",
            headers={"Retry-After": "42"},
            body=json.dumps(body),
        )

    page.route("**/v1/session", locked)
    log_in(page, "alice", "anything")
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_have_text("Too many attempts: try again in 42 s.")
    page.unroute("**/v1/session")

    # a wrong password: the server's reason, and still no app
    log_in(page, "alice", "not her password")
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    expect(page.locator("#panel-classify")).to_be_hidden()
    expect(page.get_by_label("Password")).to_be_focused()

    # alice, an operator: classifies, finds the row in History, deletes it
    log_in(page, "alice", USERS["alice"][1])
    signed_in_as(page, "alice", "operator")
    expect(page.locator("#model-select option")).to_have_count(6)  # "default" + 5 models
    label = classify(page, photo)
    assert label in CAT_LABELS
    open_history(page)
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".label .name")).to_have_text(label)
    expect(rows.first.locator("td.source")).to_have_text("web")
    expect(page.locator("#history-summary")).to_have_text("1 recognition in the last 24 hours.")
    row_id = rows.first.get_attribute("data-id")
    rows.first.locator("button.expand").click()
    delete = page.get_by_role("button", name="Delete")
    expect(delete).to_be_visible()

    # meanwhile alice logs out and in again in another tab: a new cookie with a new CSRF token,
    # so this tab's token is stale; its delete gets a 403, and the page takes the new token and
    # sends the delete again
    other = page.context.new_page()
    other.goto(login_server)
    signed_in_as(other, "alice", "operator")
    other.get_by_role("button", name="Log out").click()
    expect_login_form(other)
    log_in(other, "alice", USERS["alice"][1])
    signed_in_as(other, "alice", "operator")
    other.close()
    deletes = []
    page.on("response", lambda r: r.request.method == "DELETE" and deletes.append(r))
    asked: list[str] = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_response(lambda r: r.request.method == "DELETE" and r.status != 403) as gone:
        delete.click()
    assert gone.value.status == 200, gone.value.text()
    assert gone.value.json() == {"deleted": 1}
    assert f"id={row_id}" in gone.value.url
    assert asked == [asked[0]] and asked[0].startswith(f"Delete “{label}”"), asked  # asked once
    stale, fresh = (r.request.header_value("x-csrf-token") for r in deletes)
    assert [r.status for r in deletes] == [403, 200] and stale and fresh and stale != fresh
    expect(rows).to_have_count(0)
    expect(page.locator("#history-empty")).to_have_text(
        "No recognitions yet: classify a photo and it shows up here."
    )
    # the plots and their summary were reloaded too
    expect(page.locator("#history-summary")).to_have_text("0 recognitions in the last 24 hours.")
    listed = page.evaluate("fetch('/v1/history').then((r) => r.json())")
    assert listed["items"] == []

    # log out: the form again, and the cookie no longer opens the API
    page.get_by_role("button", name="Log out").click()
    expect_login_form(page)
    expect(page.get_by_role("alert")).to_be_hidden()
    assert page.evaluate(STATUS_OF, "/v1/history") == 401

    # victor, a viewer: classifies and reads the history, but may not delete
    log_in(page, "victor", USERS["victor"][1])
    signed_in_as(page, "victor", "viewer")
    expect(rows).to_have_count(0)  # nothing of alice's left on the page (#history was still shown)
    label = classify(page, photo)
    open_history(page)
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".label .name")).to_have_text(label)
    rows.first.locator("button.expand").click()
    expect(page.locator("#history-rows tr.details")).to_be_visible()
    expect(page.locator("#history-rows tr.details")).to_contain_text("Recorded")
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    row_id = rows.first.get_attribute("data-id")
    status = page.evaluate(
        """async (id) => {
          const session = await (await fetch("/v1/session")).json();
          const response = await fetch(`/v1/history?id=${encodeURIComponent(id)}`, {
            method: "DELETE", headers: { "X-CSRF-Token": session.csrf_token },
          });
          return [session.user, session.scopes, response.status, (await response.json()).detail];
        }""",
        row_id,
    )
    assert status[:3] == ["victor", ["classify", "history:read"], 403], status
    assert "history:delete" in status[3], status
    no_token = page.evaluate(
        """async (bytes) => {
          const form = new FormData();
          form.append("file", new Blob([new Uint8Array(bytes)], { type: "image/jpeg" }), "cat.jpg");
          const response = await fetch("/v1/classify", { method: "POST", body: form });
          return [response.status, (await response.json()).detail];
        }""",
        list(photo.read_bytes()),
    )
    assert no_token[0] == 403 and "X-CSRF-Token" in no_token[1], no_token
    listed = page.evaluate("fetch('/v1/history').then((r) => r.json())")
    assert [item["id"] for item in listed["items"]] == [row_id]  # neither refused call changed anything

    # the session ends under the page (here: the cookie is gone): the next answer, a 401, brings
    # back the login form with a word on why
    page.context.clear_cookies()
    page.get_by_role("tab", name="Classify").click()
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("alert")).to_have_text("Your session ended; log in again.")
    expect_login_form(page)
    expect(rows).to_have_count(0)

    unexpected = [e for e in page_log.console_errors if not EXPECTED_CONSOLE.search(e)]
    assert unexpected == []
    failures = [f for f in page_log.failed_requests if not expected_failure(f)]
    assert failures == []


def expected_failure(entry: str) -> bool:
    url, _, status = entry.rpartition(": ")
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0]
    return (path, int(status)) in EXPECTED_FAILURES if status.isdigit() else False


def test_an_open_server_shows_the_app_and_no_login(page: Page, page_log: PageLog, server):
    """No users or keys on loopback: no login form, no "Signed in" line, every tab as before."""
    page.goto(server, wait_until="networkidle")
    expect(page.locator("#model-select option")).to_have_count(6)
    expect(page.get_by_role("tab")).to_have_count(3)  # Classify, History, Live
    expect(page.locator("#panel-classify")).to_be_visible()
    expect(page.locator("#login-view")).to_be_hidden()
    expect(page.locator("#whoami")).to_be_hidden()
    info = page.evaluate("fetch('/v1/session').then((r) => r.json())")
    assert info["login_required"] is False and info["user"] is None
    assert "history:delete" in info["scopes"]
    assert page_log.console_errors == []
    assert page_log.failed_requests == []

"""A person's view of the History tab: classify real photos on the page, then find them again in
the history's table (with thumbnails), its plots, its filters and its CSV export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e import test_web_page as web_page
from tests.e2e.conftest import running_server, server_env
from tests.e2e.test_web_page import ARTIFACTS, BROKEN_IMAGES, PageLog

pytestmark = pytest.mark.browser
# the page test's fixtures: a 1000x900 Chromium page, and what it complained about
page, page_log = web_page.page, web_page.page_log
# distinctive photos the default model names with confidence; the test reads the label it shows
PHOTOS = ("n01531178_goldfinch.JPEG", "n01622779_great_grey_owl.JPEG", "n01770393_scorpion.JPEG")
HOURLY_COUNTS = "gs => gs.map((g) => Number(g.getAttribute('data-count')))"


@pytest.fixture(scope="module")
def history_server(tmp_path_factory, artifact_cache) -> Iterator[str]:
    """A server of our own, so its history holds only this module's rows, with thumbnails kept
    and every row committed before its answer (sync), so the History tab finds it at once."""
    root = tmp_path_factory.mktemp("history-server")
    extra = {"RECOGNIZER_HISTORY_IMAGES": "thumbnail", "RECOGNIZER_HISTORY_DURABILITY": "sync"}
    env = server_env(root / "torch-home", artifact_cache, RECOGNIZER_DATA_DIR=str(root / "data"), **extra)
    with running_server(root, env) as url:
        yield url


def classify_on_the_page(page: Page, photo: Path) -> str:
    """Upload one photo on the Classify tab; the top label the page shows."""
    with page.expect_response(lambda r: "/v1/classify" in r.url and r.request.method == "POST") as answer:
        page.set_input_files("#file-input", str(photo))
    assert answer.value.ok, answer.value.text()
    label = answer.value.json()["predictions"][0]["label"]
    expect(page.locator("#predictions .label").first).to_have_text(label, timeout=30_000)
    return label


def test_the_history_tab_shows_what_the_page_classified(
    page: Page, page_log: PageLog, history_server, labeled_photos
):
    photos = {p.path.name: p.path for p in labeled_photos}
    missing = [name for name in PHOTOS if name not in photos]
    if missing:
        pytest.skip(f"shared photos missing: {missing}")
    page.goto(history_server)
    expect(page.locator("#model-select option")).to_have_count(6)
    labels = [classify_on_the_page(page, photos[name]) for name in PHOTOS]
    # and one file another client sent that was no image: a rejected input, shown as one
    rejected = httpx.post(f"{history_server}/v1/classify", files={"file": ("notes.jpg", b"not a photo")})
    assert rejected.status_code == 415, rejected.text

    # History: a row per photo, newest first, with its time, top label and thumbnail
    history_tab = page.get_by_role("tab", name="History")
    history_tab.click()
    expect(page).to_have_url(re.compile(r"#history$"))
    expect(history_tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-classify")).to_be_hidden()
    rows = page.locator("#history-rows tr.item")
    expect(rows).to_have_count(len(PHOTOS) + 1)
    error_row = rows.first
    expect(error_row).to_have_class(re.compile(r"\berror-row\b"))
    expect(error_row.locator(".error-type")).to_have_text("not_an_image")
    expect(error_row.locator(".error-detail")).to_contain_text("not an image")
    expect(error_row.locator("td.source")).to_have_text("api")
    for row, label in zip(rows.all()[1:], reversed(labels), strict=True):
        expect(row.locator(".label .name")).to_have_text(label)
        expect(row.locator(".label .pct")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
        expect(row.locator("time")).to_have_text(re.compile(r"\d{1,2}:\d{2}:\d{2}"))
        expect(row.locator("td.source")).to_have_text("web")  # the page says X-Recognizer-Source: web
    page.locator("#table-wrap").scroll_into_view_if_needed()
    expect(page.locator("#history-rows img")).to_have_count(len(PHOTOS))
    page.wait_for_function(
        "[...document.querySelectorAll('#history-rows img')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    assert page.evaluate(BROKEN_IMAGES) == 0

    # the plots: one column per hour of the last day, together as many as the rows
    total = len(PHOTOS) + 1
    summary = f"{total} recognitions in the last 24 hours, 1 rejected."
    expect(page.locator("#history-summary")).to_have_text(summary)
    expect(page.locator("#chart-volume rect.bar.ok").first).to_be_visible()
    expect(page.locator("#chart-volume rect.bar.err")).to_have_count(1)  # stacked on the hour's column
    hourly = page.locator("#chart-volume g.band").evaluate_all(HOURLY_COUNTS)
    assert len(hourly) >= 24 and sum(hourly) == total == rows.count(), hourly
    expect(page.locator("#chart-labels rect.bar")).to_have_count(len(set(labels)))
    expect(page.locator("#chart-latency circle.dot.p95")).not_to_have_count(0)
    expect(page.locator("#chart-groups svg title").first).to_contain_text("group")
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / "history.png"), full_page=True)

    # filtered by one photo's label: only its row, and the plots follow
    chosen = labels[0]
    page.get_by_label("Label or wnid").fill(chosen)
    expect(page.locator("#history-summary")).to_contain_text("(filtered)")
    expect(rows).to_have_count(labels.count(chosen))
    expect(rows.locator(".label .name")).to_have_text([chosen] * labels.count(chosen))
    hourly = page.locator("#chart-volume g.band").evaluate_all(HOURLY_COUNTS)
    assert sum(hourly) == labels.count(chosen), hourly

    # the CSV export holds the same rows
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    text = Path(download.value.path()).read_text("utf-8")
    assert text.startswith("id,created_at,source,")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert [(r["top_label"], r["source"]) for r in exported] == [(chosen, "web")] * labels.count(chosen)

    # a reload of #history lands on the History tab; the arrow keys move between the tabs
    page.reload()
    expect(history_tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-history")).to_be_visible()
    expect(rows).to_have_count(total)
    history_tab.press("ArrowLeft")
    expect(page.get_by_role("tab", name="Classify")).to_be_focused()
    expect(page.locator("#panel-classify")).to_be_visible()
    expect(page).not_to_have_url(re.compile("#"))
    page.keyboard.press("ArrowRight")
    expect(history_tab).to_be_focused()
    expect(page.locator("#panel-history")).to_be_visible()

    # a phone: the page does not scroll sideways, the table scrolls inside its own box
    page.set_viewport_size({"width": 390, "height": 844})
    expect(rows).to_have_count(total)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    wrap = page.locator("#table-wrap")
    assert wrap.evaluate("(w) => w.scrollWidth > w.clientWidth")

    assert page_log.console_errors == []
    assert page_log.failed_requests == []


def test_the_history_tab_says_why_it_has_nothing_to_show(page: Page, history_server):
    """The API's problem detail (here: history off) is shown as an alert, not an empty table."""
    detail = "recognition history is off on this server (RECOGNIZER_HISTORY=off)"
    body = f'{{"title": "Not available", "status": 409, "detail": "{detail}"}}'
    page.route(
        re.compile(r"/v1/history(/stats)?\?"),
        lambda route: route.fulfill(status=409, content_type="application/problem+json", body=body),
    )
    page.goto(f"{history_server}/#history")
    expect(page.get_by_role("alert")).to_contain_text(detail)
    expect(page.locator("#history-list")).to_be_hidden()
    expect(page.locator("#charts")).to_be_hidden()

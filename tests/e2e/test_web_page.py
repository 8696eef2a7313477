"""A person's view: the page in a real browser, against a real server, labels a cat photo."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import CHROMIUM_FLAGS
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.browser
ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture
def page(chromium):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        yield context.new_page()
        browser.close()


def test_uploading_a_cat_photo_shows_cat_labels(page, server, cat_photo, tmp_path):
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg_bytes(cat_photo, quality=92))
    page.goto(server)
    expect(page.locator("#model-select option")).to_have_count(6)  # "default" + 5 models
    page.set_input_files("#file-input", str(photo))
    first = page.locator("#predictions li").first
    expect(first).to_be_visible(timeout=30_000)
    assert first.locator(".label").inner_text() in {"tabby", "tiger cat", "Egyptian cat"}
    assert "%" in first.locator(".pct").inner_text()
    expect(page.locator("#meta")).to_contain_text("efficientnet_lite0 · onnxruntime")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)


def test_a_rejected_file_gets_a_clear_message(page, server, tmp_path):
    fake = tmp_path / "invoice.jpg"
    fake.write_bytes(b"%PDF-1.7\n%%EOF\n")
    page.goto(server)
    page.set_input_files("#file-input", str(fake))
    expect(page.locator("#error")).to_contain_text("not an image", timeout=30_000)
    expect(page.locator("#predictions li")).to_have_count(0)


def test_the_page_works_on_a_phone_screen(page, server, cat_photo, tmp_path):
    page.set_viewport_size({"width": 375, "height": 740})
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(jpeg_bytes(cat_photo))
    page.goto(server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    page.set_input_files("#file-input", str(photo))
    expect(page.locator("#predictions li").first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "web-page-phone.png"), full_page=True)

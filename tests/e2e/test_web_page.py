"""A person's view: the page in a real browser, against a real server, labels a cat photo."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import CHROMIUM_FLAGS
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.browser
ARTIFACTS = REPO_ROOT / "test-artifacts"
CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}
# Every <img> that is laid out but has no picture: what a browser draws as a broken-image icon.
BROKEN_IMAGES = (
    "[...document.images].filter((i) => i.checkVisibility() && (!i.complete || i.naturalWidth === 0)).length"
)


@pytest.fixture
def page(chromium):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        yield context.new_page()
        browser.close()


@dataclass
class PageLog:
    """What the browser complained about: console errors, uncaught exceptions, failed or 4xx/5xx requests."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


@pytest.fixture
def page_log(page: Page) -> PageLog:
    log = PageLog()
    page.on("console", lambda message: message.type == "error" and log.console_errors.append(message.text))
    page.on("pageerror", lambda error: log.console_errors.append(str(error)))
    page.on("requestfailed", lambda request: log.failed_requests.append(f"{request.url}: {request.failure}"))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and log.failed_requests.append(f"{response.url}: {response.status}")
        ),
    )
    return log


def assert_inside_viewport(page: Page, locator: Locator) -> None:
    expect(locator).to_be_in_viewport(ratio=1, timeout=10_000)
    box, viewport = locator.bounding_box(), page.viewport_size
    assert box is not None and viewport is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (box, viewport)
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (box, viewport)


def test_uploading_a_cat_photo_shows_cat_labels(page, server, cat_photo, tmp_path):
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg_bytes(cat_photo, quality=92))
    page.goto(server)
    expect(page.locator("#model-select option")).to_have_count(6)  # "default" + 5 models
    page.set_input_files("#file-input", str(photo))
    first = page.locator("#predictions li").first
    expect(first).to_be_visible(timeout=30_000)
    assert first.locator(".label").inner_text() in CAT_LABELS
    assert "%" in first.locator(".pct").inner_text()
    expect(page.locator("#meta")).to_contain_text("efficientnet_lite0 · onnxruntime")
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)


@pytest.mark.parametrize(
    ("width", "height"),
    [pytest.param(1280, 800, id="desktop-1280x800"), pytest.param(390, 844, id="phone-390x844")],
)
def test_the_whole_result_is_in_view_after_classifying(page, server, cat_photo, tmp_path, width, height):
    page.set_viewport_size({"width": width, "height": height})
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(jpeg_bytes(cat_photo, quality=92))
    page.goto(server)
    expect(page.locator("#model-select option")).to_have_count(6)
    page.set_input_files("#file-input", str(photo))
    labels = page.locator("#predictions li")
    expect(labels).to_have_count(5, timeout=30_000)
    meta = page.locator("#meta")
    expect(meta).to_contain_text(re.compile(r"efficientnet_lite0 · onnxruntime · \d+ ms"))
    assert_inside_viewport(page, meta)  # the last line first: the page may still be scrolling towards it
    assert_inside_viewport(page, labels.first.locator(".label"))
    assert_inside_viewport(page, labels.last)
    assert labels.first.locator(".label").inner_text() in CAT_LABELS
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling

    preview = page.locator("#preview")
    expect(preview).to_be_visible()
    assert page.evaluate(BROKEN_IMAGES) == 0
    picture = preview.bounding_box()
    assert picture is not None
    assert (
        picture["height"] <= (0.6 if width >= 960 else 0.45) * height + 1
    )  # the photo leaves room for labels
    if width >= 960:  # side by side: the labels start to the right of the photo, level with it
        answer = page.locator("#answer").bounding_box()
        assert answer is not None
        assert answer["x"] >= picture["x"] + picture["width"]
        assert answer["y"] < picture["y"] + picture["height"]
    page.screenshot(path=str(ARTIFACTS / f"web-page-{width}x{height}.png"))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        pytest.param("report.jpg", b"%PDF-1.4\n%%EOF\n", "not an image", id="pdf-named-jpg"),
        pytest.param("empty.jpg", b"", "empty", id="zero-bytes"),
    ],
)
def test_a_rejected_file_leaves_no_broken_image(page, server, tmp_path, name, data, message):
    fake = tmp_path / name
    fake.write_bytes(data)
    page.goto(server)
    page.set_input_files("#file-input", str(fake))
    expect(page.locator("#error")).to_contain_text(message, timeout=30_000)
    expect(page.locator("#predictions li")).to_have_count(0)
    expect(page.locator("#preview")).to_be_hidden()
    assert page.evaluate(BROKEN_IMAGES) == 0


def test_a_photo_the_browser_cannot_draw_still_gets_labels_and_no_broken_image(
    page, server, cat_photo, tmp_path
):
    buffer = io.BytesIO()
    cat_photo.save(buffer, format="TIFF")  # the server reads TIFF; Chromium cannot show it
    photo = tmp_path / "chelsea.tiff"
    photo.write_bytes(buffer.getvalue())
    page.goto(server)
    page.set_input_files("#file-input", str(photo))
    expect(page.locator("#predictions li")).to_have_count(5, timeout=30_000)
    expect(page.locator("#preview")).to_be_hidden()
    assert page.evaluate(BROKEN_IMAGES) == 0
    assert page.locator("#predictions .label").first.inner_text() in CAT_LABELS


def test_the_model_picker_says_why_a_model_is_greyed_out(page, server):
    models = httpx.get(f"{server}/v1/models", timeout=10).json()
    page.goto(server)
    expect(page.locator("#model-select option")).to_have_count(len(models) + 1)
    unusable = 0
    for model in models:
        option = page.locator(f'#model-select option[value="{model["name"]}"]')
        text = option.inner_text()
        acc = model["accuracy"]["acc@1"]
        assert f"{acc:.1f}%" in text, text  # one decimal, like the labels' scores
        assert not re.search(r"\d\.\d\d", text), text  # not "69.758%"
        if model["available_offline"] or model["loaded"]:
            expect(option).to_be_enabled()
            assert "not installed" not in text
        else:
            unusable += 1
            expect(option).to_be_disabled()
            assert "weights not installed" in text, text
    note = page.locator("#model-note")
    if unusable:
        expect(note).to_be_visible()
        expect(note).to_contain_text("recognizer weights fetch")
        expect(note).to_contain_text("recognizer weights import")
    else:
        expect(note).to_be_hidden()
    assert unusable == 4, "the server fixture's empty TORCH_HOME has no torchvision weights"


def test_the_page_loads_without_console_errors_or_failed_requests(page, page_log, server):
    page.goto(server, wait_until="networkidle")
    expect(page.locator("#model-select option")).to_have_count(6)
    icon = page.evaluate(
        "fetch(document.querySelector('link[rel=icon]').href)"
        ".then((r) => [r.status, r.headers.get('content-type')])"
    )
    assert icon == [200, "image/svg+xml"]
    assert page_log.console_errors == []
    assert page_log.failed_requests == []


def test_the_page_works_on_a_phone_screen(page, server, cat_photo, tmp_path):
    page.set_viewport_size({"width": 375, "height": 740})
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(jpeg_bytes(cat_photo))
    page.goto(server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    page.set_input_files("#file-input", str(photo))
    expect(page.locator("#predictions li").first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "web-page-phone.png"), full_page=True)

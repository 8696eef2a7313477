"""The Live tab in a real browser against a real server: Chromium's fake camera plays a clip made
from a real cat photo, and the labels drawn over the video say cat; a server stream added with
the tab's form shows its state and labels, and goes with its Remove button."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import CHROMIUM_FLAGS, running_server, server_env

pytestmark = pytest.mark.browser
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOT = REPO_ROOT / "docs" / "live.png"
CAMERA_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
CLIP_SIZE = (480, 320)  # the photo's own 3:2
CLIP_FRAMES = 15


def write_y4m(path: Path, frames: list[Image.Image], fps: int = 15) -> Path:
    """YUV4MPEG2, the format Chromium's fake camera plays: a header, then per frame ``FRAME`` and
    its Y, U and V planes (4:2:0, chroma halved both ways); full-range BT.601 as JPEG has it."""
    width, height = frames[0].size
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y, u, v = (np.asarray(plane) for plane in frame.convert("YCbCr").split())
            out.write(b"FRAME\n")
            out.write(y.tobytes())
            for chroma in (u, v):  # average each 2x2 block
                c = chroma.astype(np.uint16)
                half = (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2] + 2) // 4
                out.write(half.astype(np.uint8).tobytes())
    return path


@pytest.fixture(scope="module")
def cat_clip(tmp_path_factory, cat_photo) -> Path:
    """The cat photo, panning a few pixels per frame as a hand-held camera would."""
    big = cat_photo.resize((CLIP_SIZE[0] + 2 * CLIP_FRAMES, CLIP_SIZE[1] + 2 * CLIP_FRAMES), Image.BICUBIC)
    frames = [big.crop((i, i, i + CLIP_SIZE[0], i + CLIP_SIZE[1])) for i in range(CLIP_FRAMES)]
    return write_y4m(tmp_path_factory.mktemp("camera") / "cat.y4m", frames)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, artifact_cache, slideshow_clip) -> Iterator[str]:
    """A server that may read video files next to the slideshow clip (streams from files)."""
    env = server_env(
        tmp_path_factory.mktemp("torch-home"),
        artifact_cache,
        RECOGNIZER_JOB_ROOTS=str(slideshow_clip.parent),
        # its own data folder: the streams lock is per folder, and other test servers share the default
        RECOGNIZER_DATA_DIR=str(tmp_path_factory.mktemp("live-data")),
    )
    with running_server(tmp_path_factory.mktemp("live-server"), env) as url:
        yield url


@pytest.fixture
def camera_page(chromium, cat_clip) -> Iterator[tuple[Page, list[str]]]:
    """A page whose camera is the cat clip, and what the browser complained about."""
    ARTIFACTS.mkdir(exist_ok=True)
    flags = [*CHROMIUM_FLAGS, *CAMERA_FLAGS, f"--use-file-for-fake-video-capture={cat_clip}"]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        yield page, errors
        browser.close()


def start_camera(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Live").click()
    expect(page.locator("#panel-live")).to_be_visible()
    page.get_by_role("button", name="Start camera").click()


def test_the_camera_overlay_names_the_cat(camera_page, live_server):
    page, errors = camera_page
    start_camera(page, live_server)
    overlay = page.locator("#live-overlay")
    expect(overlay).to_contain_text("cat", timeout=15_000)
    expect(overlay.locator("li")).to_have_count(3)
    expect(page.locator("#camera-stats")).to_contain_text(" fps · ")
    expect(page.locator("#camera-stats")).to_contain_text("efficientnet_lite0")
    # one frame in flight, answered again and again: the rate keeps being measured
    page.wait_for_function("/[1-9][0-9.]* fps/.test(document.getElementById('camera-stats').textContent)")
    assert page.locator("#camera-error").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "live-camera.png"))

    page.get_by_role("button", name="Stop camera").click()
    expect(page.locator("#camera-stage")).to_be_hidden()
    expect(page.get_by_role("button", name="Start camera")).to_be_enabled()
    assert not errors, errors


def test_leaving_the_tab_stops_the_camera(camera_page, live_server):
    page, errors = camera_page
    start_camera(page, live_server)
    expect(page.locator("#live-overlay")).to_contain_text("cat", timeout=15_000)
    page.get_by_role("tab", name="Classify").click()
    live_tracks = "document.getElementById('camera-video').srcObject"
    page.wait_for_function(f"{live_tracks} === null")
    page.get_by_role("tab", name="Live").click()
    expect(page.locator("#camera-stage")).to_be_hidden()
    assert not errors, errors


def test_a_server_stream_is_added_watched_and_removed(camera_page, live_server, slideshow_clip):
    page, errors = camera_page
    start_camera(page, live_server)
    expect(page.locator("#streams-note")).to_contain_text("No streams yet", timeout=10_000)
    page.fill("#s-name", "door")
    page.fill("#s-url", str(slideshow_clip))
    page.get_by_role("button", name="Add stream").click()
    card = page.locator(".stream-card[data-name='door']")
    expect(card).to_be_visible()
    expect(card.locator(".state")).to_have_text("live", timeout=15_000)
    expect(card.locator(".stream-labels")).to_contain_text("cat", timeout=15_000)
    expect(card.locator(".url")).to_contain_text("slideshow.mp4")
    expect(card.locator(".events")).to_contain_text("started", timeout=15_000)  # an alert, as it happened
    expect(page.locator("#live-overlay")).to_contain_text("cat", timeout=15_000)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.fill("#s-name", "door")
    page.fill("#s-url", str(slideshow_clip))
    page.get_by_role("button", name="Add stream").click()
    expect(page.locator("#stream-error")).to_contain_text("door")  # the problem's detail: it exists

    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "live-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling

    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Remove stream door").click()
    expect(card).to_have_count(0)
    expect(page.locator("#streams-note")).to_contain_text("No streams yet")
    unexpected = [e for e in errors if "409" not in e]  # the browser logs the refused second add
    assert not unexpected, errors


def test_a_refused_camera_permission_says_so(chromium, live_server):
    """No --use-fake-ui-for-media-stream: the permission prompt is answered "no"."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=[*CHROMIUM_FLAGS, "--use-fake-device-for-media-stream"]
        )
        page = browser.new_context().new_page()
        start_camera(page, live_server)
        expect(page.locator("#camera-error")).to_contain_text("permission was denied", timeout=10_000)
        expect(page.get_by_role("button", name="Start camera")).to_be_enabled()
        expect(page.locator("#camera-stage")).to_be_hidden()
        browser.close()


@pytest.mark.parametrize(
    ("status", "note"),
    [
        pytest.param(404, "This server does not run streams.", id="no-streams-api"),
        pytest.param(409, "Server streams are not available: streams do not run here", id="streams-off"),
    ],
)
def test_a_server_without_streams_gets_a_sentence_not_a_list(camera_page, live_server, status, note):
    page, _ = camera_page
    problem = {"title": "Not available", "status": status, "detail": "streams do not run here"}
    page.route(
        "**/v1/streams",
        lambda route: route.fulfill(status=status, json=problem, content_type="application/problem+json"),
    )
    start_camera(page, live_server)
    expect(page.locator("#streams-note")).to_have_text(note)
    expect(page.locator("#stream-form")).to_be_hidden()
    expect(page.locator("#live-overlay")).to_contain_text("cat", timeout=15_000)  # the camera still works

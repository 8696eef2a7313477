"""What `recognizer watch` and POST /v1/streams accept as a source, and what they show of it."""

from __future__ import annotations

import pytest

from recognizer.errors import BadSourceError
from recognizer.streams.reader import describe
from recognizer.streams.sources import parse_source, redact


def test_urls_by_scheme_and_credentials_never_shown():
    source = parse_source("rtsp://admin:hunter2@10.0.0.5:554/stream1")
    assert source.kind == "rtsp" and source.live
    assert "hunter2" not in source.display and "hunter2" not in repr(source)
    assert source.display == "rtsp://***@10.0.0.5:554/stream1"
    assert parse_source("https://cam.local/video.mjpg").kind == "http"
    assert parse_source("tcp://127.0.0.1:9000").kind == "tcp"


def test_secrets_in_query_strings_and_messages_are_redacted():
    assert redact("http://cam/x.mjpg?user=a&password=s3cret") == "http://cam/x.mjpg?user=a&password=***"
    text = "Connection to rtsp://u:p@h/x failed"
    assert redact(text) == "Connection to rtsp://***@h/x failed"
    assert redact("rtsp://admin:p@ss@cam:554/x") == "rtsp://***@cam:554/x"  # FFmpeg splits at the last @
    assert "p@" not in describe(OSError("rtsp://u:p@h/x: refused"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://host/clip.mp4", "unknown stream URL scheme ftp://"),
        ("rtsp:///nohost", "names no host"),
        ("/no/such/clip.mp4", "no such video file"),
        ("", "give a stream source"),
        ("/dev/video99", "no camera at /dev/video99"),
        ("rtsp://cam:notaport/x", "not a usable stream URL"),
        ("/videos/a\x00b.mp4", "printable"),
        ("rtsp://cam/\ud800", "printable"),
    ],
)
def test_bad_sources_are_one_clear_line(text, message):
    with pytest.raises(BadSourceError, match=message):
        parse_source(text)


def test_a_camera_index_is_its_device(tmp_path):
    source = parse_source("3", check_file=False)
    assert (source.kind, source.target, source.format) == ("device", "/dev/video3", "v4l2")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert parse_source(str(clip)).kind == "file" and not parse_source(str(clip)).live

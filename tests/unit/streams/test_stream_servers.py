"""The live-stream fixtures themselves: each server serves frames a PyAV client decodes, comes back
after a restart, and leaves no process behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests import stream_servers
from tests.stream_servers import (
    GarbageServer,
    HttpTsServer,
    RtspServer,
    StallingServer,
    TcpTsServer,
    make_clip,
    require_ffmpeg,
    require_rtsp,
)

RTSP_OPTIONS = {"rtsp_transport": "tcp", "fflags": "nobuffer"}
COLORS = [(220, 30, 30), (30, 30, 220)]  # a red slide, then a blue one


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 25 fps, 320x240, a keyframe every 10 frames: red for 1 s, then blue."""
    folder = tmp_path_factory.mktemp("stream-servers")
    slides = []
    for number, color in enumerate(COLORS):
        slides.append(folder / f"slide{number}.png")
        Image.new("RGB", (400, 300), color).save(slides[-1])
    return make_clip(folder / "clip.mp4", slides, seconds_each=1.0, fps=25, size=(320, 240), gop=10)


def decode(url: str, count: int, options: dict[str, str] | None = None) -> list[av.VideoFrame]:
    """The first ``count`` frames a fresh PyAV client decodes from ``url`` (without ``nobuffer``, which
    drops what FFmpeg reads while probing the stream: about a second of a TS server's clip)."""
    frames: list[av.VideoFrame] = []
    with av.open(url, options=options or {}, timeout=(10.0, 5.0)) as container:
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == count:
                break
    return frames


def gone(pids: list[int]) -> bool:
    return not any(os.path.exists(f"/proc/{pid}") for pid in pids)


def test_make_clip_is_an_h264_slideshow_with_a_keyframe_every_gop(clip):
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 320, 240)
        assert stream.codec_context.pix_fmt == "yuv420p"
        keys = [round(p.pts * p.time_base * 25) for p in container.demux(stream) if p.size and p.is_keyframe]
    with av.open(str(clip)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 50
    assert keys == [0, 10, 20, 30, 40]  # frame numbers
    assert frames[5].mean(axis=(0, 1)) == pytest.approx(COLORS[0], abs=12)
    assert frames[45].mean(axis=(0, 1)) == pytest.approx(COLORS[1], abs=12)


@pytest.mark.slow
def test_rtsp_server_serves_a_live_loop_and_comes_back_after_a_restart(clip):
    require_rtsp()
    with RtspServer(clip) as server:
        assert server.url.startswith("rtsp://127.0.0.1:") and server.url.endswith("/clip")
        port, pids = server.port, server.pids
        assert len(pids) == 2  # the RTSP server and ffmpeg feeding it
        # Longer than the clip: the loop goes on at real time, shared by clients that come and go.
        began = time.monotonic()
        assert len(decode(server.url, 60, RTSP_OPTIONS)) == 60
        assert time.monotonic() - began > 60 / 25 * 0.8
        assert len(decode(server.url, 5, RTSP_OPTIONS)) == 5

        with av.open(server.url, options=RTSP_OPTIONS, timeout=(10.0, 5.0)) as watching:
            frames = watching.decode(video=0)
            next(frames)
            server.restart(kill=True)  # a crash, and back on the same port
            killed = time.monotonic()
            with pytest.raises((StopIteration, av.error.FFmpegError, OSError)):
                for _ in range(100):
                    next(frames)
            assert time.monotonic() - killed < 3  # the kernel closed the connection: EOF at once
        assert server.port == port and gone(pids)
        assert len(decode(server.url, 5, RTSP_OPTIONS)) == 5
        pids = server.pids
    assert gone(pids) and not server.running


@pytest.mark.parametrize("kind", [HttpTsServer, TcpTsServer], ids=["http", "tcp"])
def test_ts_servers_serve_each_client_the_loop_from_its_start(clip, kind):
    require_ffmpeg()
    with kind(clip) as server:
        assert server.url.startswith(f"{server.scheme}://127.0.0.1:{server.port}")
        first = decode(server.url, 5)
        assert len(first) == 5
        assert first[0].to_ndarray(format="rgb24").mean(axis=(0, 1)) == pytest.approx(COLORS[0], abs=12)
        assert server.wait_ready(5)  # ffmpeg -listen serves one client, then is started again
        assert len(decode(server.url, 5)) == 5
        pids = server.pids
        server.restart(kill=True)
        assert gone(pids)
        assert len(decode(server.url, 5)) == 5
        pids = server.pids
    assert gone(pids)


@pytest.mark.parametrize("http", [False, True], ids=["tcp", "http"])
def test_stalling_server_sends_the_start_of_the_clip_then_hangs(clip, http):
    with StallingServer(clip, seconds=1.0, http=http, realtime=False) as server:
        frames = []
        with (
            av.open(server.url, timeout=(10.0, 1.0)) as container,
            pytest.raises(av.error.FFmpegError),  # PyAV's read timeout: the connection is still open
        ):
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
        assert 0 < len(frames) <= 25
        assert frames[0].mean(axis=(0, 1)) == pytest.approx(COLORS[0], abs=12)
        assert server.connections == 1


@pytest.mark.parametrize("http", [False, True], ids=["tcp", "http"])
def test_garbage_server_is_invalid_data(http):
    with GarbageServer(http=http) as server, pytest.raises(av.error.InvalidDataError):
        decode(server.url, 1)


def test_require_rtsp_skips_saying_what_to_install(monkeypatch):
    monkeypatch.setattr(stream_servers, "SYSTEM_PYTHON", "/nonexistent/python3")
    monkeypatch.setattr(stream_servers, "_rtsp_reason", [])
    monkeypatch.setattr(stream_servers, "ffmpeg_missing", lambda: None)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install .*gir1\.2-gst-rtsp-server-1\.0"):
        require_rtsp()
    with pytest.raises(RuntimeError, match="cannot run here"):
        RtspServer(Path(__file__)).start()


def test_stalling_clip_bytes_are_mpeg_ts_in_time_order(clip):
    data, marks = stream_servers.clip_to_ts(clip, seconds=1.0)
    assert data[0] == 0x47 and len(data) % 188 == 0  # MPEG-TS sync bytes, whole packets
    times = [t for t, _ in marks]
    assert times == sorted(times) and times[-1] < 1.0
    assert np.all(np.diff([offset for _, offset in marks]) >= 0)

"""The reader: sampled frames at --fps, decode shortcuts, newest-frame-wins with exact drop counts,
clear reasons for sources that are not video, and no thread left behind."""

from __future__ import annotations

import itertools
import threading
import time

from recognizer.streams.reader import FrameReader
from recognizer.streams.sources import parse_source


def drain(reader: FrameReader, consume_s: float = 0.0, limit_s: float = 30.0) -> list:
    frames, deadline = [], time.monotonic() + limit_s
    reader.start()
    while time.monotonic() < deadline:
        frame = reader.take()
        if frame is not None:
            frames.append(frame)
            time.sleep(consume_s)
        elif reader.finished:
            break
        else:
            time.sleep(0.002)
    reader.stop()
    return frames


def test_a_file_replayed_gives_one_frame_per_sample_in_order_scaled_for_the_model(slideshow_clip):
    reader = FrameReader(parse_source(str(slideshow_clip)), fps=2, resize=256, realtime=False)
    frames = drain(reader)
    times = [frame.at for frame in frames]
    assert 17 <= len(frames) <= 18 and times == sorted(times) and times[0] == 0.0
    assert all(0.4 <= b - a <= 0.6 for a, b in itertools.pairwise(times))  # B-frames are skipped
    assert {frame.image.size for frame in frames} == {(455, 256)}  # short side = the model's resize
    assert (frames[0].width, frames[0].height) == (640, 360)
    assert reader.stats.state == "ended" and reader.stats.dropped == 0 and reader.stats.frames_in == 225
    assert reader.alive_threads() == 0


def test_dense_keyframes_are_the_only_frames_decoded(dense_keyframe_clip):
    fast = FrameReader(parse_source(str(dense_keyframe_clip)), fps=2, resize=256, realtime=False)
    plain = FrameReader(
        parse_source(str(dense_keyframe_clip)), fps=2, resize=256, realtime=False, shortcuts=False
    )
    fast_frames, plain_frames = drain(fast), drain(plain)
    assert fast.stats.keyframes_only and not plain.stats.keyframes_only
    assert plain.stats.decoded == 225
    assert fast.stats.decoded <= 40  # due keyframes, and the first GOPs before their spacing is known
    assert abs(len(fast_frames) - len(plain_frames)) <= 1


def test_a_slow_consumer_gets_the_newest_frame_and_every_drop_is_counted(slideshow_clip):
    reader = FrameReader(parse_source(str(slideshow_clip)), fps=25, resize=256, realtime=True)
    frames = drain(reader, consume_s=0.2)
    stats = reader.stats
    assert stats.dropped > 0
    assert stats.sampled == len(frames) + stats.dropped  # nothing lost without being counted
    ages = [b.at - a.at for a, b in itertools.pairwise(frames)]
    assert max(ages) < 0.5  # each frame taken is the newest, not a queued old one


def test_a_file_that_is_not_a_video_fails_with_its_reason(tmp_path):
    fake = tmp_path / "report.mp4"
    fake.write_bytes(b"%PDF-1.4\n" + b"x" * 5000)
    reader = FrameReader(parse_source(str(fake)), fps=2, resize=256)
    assert drain(reader, limit_s=10) == []
    assert reader.stats.state == "failed" and "not a video" in reader.stats.reason
    assert reader.alive_threads() == 0


def test_stop_mid_stream_joins_every_thread(slideshow_clip):
    before = threading.active_count()
    reader = FrameReader(parse_source(str(slideshow_clip)), fps=2, resize=256, realtime=True)
    reader.start()
    time.sleep(0.5)
    reader.stop()
    assert reader.alive_threads() == 0 and reader.stats.state == "stopped"
    assert threading.active_count() == before

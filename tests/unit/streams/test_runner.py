"""A stream against a deliberately slow model: frames classified are never stale (p99 age under
twice the inference time on a 25-fps source), and a replayed file's events are the same every run."""

from __future__ import annotations

import asyncio

from recognizer.inference.results import Prediction, Recognition
from recognizer.streams.dispatch import Dispatcher
from recognizer.streams.events import Event, StreamRules
from recognizer.streams.reader import FrameReader
from recognizer.streams.runner import StreamRunner, StreamSpec, percentile
from recognizer.streams.sources import parse_source

INFER_S = 0.2


class SlowPipeline:
    """Stands in for the model: each frame takes INFER_S, one at a time, and is labelled "tabby"."""

    def __init__(self) -> None:
        self.calls = 0

    async def wait_ready(self) -> None:
        return None

    async def recognize_frame(self, image, **_: object) -> Recognition:
        self.calls += 1
        await asyncio.sleep(INFER_S)
        return Recognition(
            "stream", "s", "fake", "fake", predictions=[Prediction(281, "n02123045", "tabby", 0.9)]
        )


class Collect:
    name = "stdout"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def deliver(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        return None


def run_stream(clip, fps: float, realtime: bool) -> tuple[StreamRunner, SlowPipeline]:
    reader = FrameReader(parse_source(str(clip)), fps=fps, resize=256, realtime=realtime)
    pipeline = SlowPipeline()
    runner = StreamRunner(
        StreamSpec("door", str(clip), fps), reader, pipeline, Dispatcher([Collect()]), StreamRules("door", [])
    )
    asyncio.run(runner.run())
    return runner, pipeline


def test_frames_classified_from_a_25_fps_source_are_never_stale(slideshow_clip):
    runner, pipeline = run_stream(slideshow_clip, fps=25, realtime=True)
    status = runner.status()
    assert status["dropped"] > 100  # the model takes ~6 frames' time: most frames must be dropped
    assert percentile(list(runner.ages), 0.99) < 2 * INFER_S
    assert status["processed"] == pipeline.calls and status["state"] == "ended"
    assert status["labels"][0]["label"] == "tabby" and runner.reader.alive_threads() == 0


def test_without_realtime_every_sampled_frame_is_classified(slideshow_clip):
    runner, pipeline = run_stream(slideshow_clip, fps=2, realtime=False)
    assert pipeline.calls == runner.reader.stats.sampled == runner.processed
    assert runner.reader.stats.dropped == 0

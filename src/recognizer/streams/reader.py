"""One reader per source: connect, demux, decode only what sampling needs, keep only the newest frame.

Three promises, each kept here rather than trusted to FFmpeg:

* **Never stale.** Sampled frames go into a one-frame :class:`NewestFrame` slot; a frame the consumer
  has not taken when the next one is sampled is replaced and counted as dropped. (``realtime=False``
  replays a file as fast as the consumer goes instead: the slot then blocks and nothing drops.)
* **Never hangs.** A supervisor thread watches each connection's progress and declares the source
  lost after ``read_timeout_s`` without a packet, whatever the decoder does (FFmpeg's own socket
  timeouts are known to take 30-90 s after a camera drops). It abandons that connection — the
  thread exits at its next packet or at FFmpeg's own timeout, and is never waited on unbounded — and
  reconnects with capped exponential backoff and jitter.
* **Decode cost is the real cost.** Packets are demuxed (cheap) and only those that can yield a
  sampled frame are decoded: when keyframes come at least as often as samples are due, or the
  codec is intra-only (MJPEG), only due keyframes are decoded at all; otherwise every packet is
  decoded (P-frames need their references) but FFmpeg skips non-reference frames. Only sampled
  frames are converted to RGB, and swscale converts them straight to the size the model resizes to.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import av
from PIL import Image

from recognizer.imaging import resized_size
from recognizer.streams.sources import Source, redact

log = logging.getLogger("recognizer.streams")

State = Literal["connecting", "live", "lost", "failed", "ended", "stopped"]
#: (kind, reason) of a source event: "lost" or "restored"
SourceObserver = Callable[[str, str | None], None]
#: first backoff delay; doubles per failed attempt up to the reader's cap
BACKOFF_START_S = 0.5


@dataclass(frozen=True)
class Frame:
    image: Image.Image
    #: stream time: media seconds for a file, seconds since the epoch for a live source
    at: float
    #: time.monotonic() when it was decoded: its age is measured from here
    captured: float
    number: int
    #: the source's own size (the image is already scaled for the model)
    width: int
    height: int


@dataclass
class ReaderStats:
    state: State = "connecting"
    reason: str | None = None
    #: frames the source sent (packets demuxed), sampled, and sampled but replaced before use
    frames_in: int = 0
    sampled: int = 0
    dropped: int = 0
    reconnects: int = 0
    #: seconds spent decoding and converting, and how many frames were decoded
    decode_s: float = 0.0
    decoded: int = 0
    keyframes_only: bool = False
    started: float = field(default_factory=time.monotonic)
    #: time.monotonic() of the first frame published (time to first frame; benchmarks' clock)
    first_frame: float | None = None


class NewestFrame:
    """A one-frame slot: put replaces (and counts the drop); take empties it."""

    def __init__(self, stats: ReaderStats, block: bool = False) -> None:
        self.stats, self.block = stats, block
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self.notify: Callable[[], None] = lambda: None

    def put(self, frame: Frame, cancelled: Callable[[], bool], waiting: Callable[[], None]) -> None:
        """``waiting`` is called while a blocking slot waits for the consumer (that is not a stall)."""
        with self._cond:
            while self.block and self._frame is not None and not cancelled():
                waiting()
                self._cond.wait(0.1)
            if self._frame is not None:
                self.stats.dropped += 1
            self._frame = frame
        self.notify()

    def take(self) -> Frame | None:
        with self._cond:
            frame, self._frame = self._frame, None
            self._cond.notify_all()
        return frame


class _Connection:
    """One attempt's shared flags, between its decoding thread and the supervisor."""

    def __init__(self) -> None:
        self.progress = time.monotonic()
        self.abandoned = threading.Event()
        self.delivered = 0
        self.ended = False
        self.reason: str | None = None

    def touch(self) -> None:
        """Waiting on purpose (pacing a file, a busy consumer): not a stalled source."""
        self.progress = time.monotonic()


class Sampler:
    """Which frame times are due at ``fps``: the first frame, then one per 1/fps of stream time."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self.next_due: float | None = None

    def due(self, t: float) -> bool:
        if self.next_due is not None and t < self.next_due - 2 * self.interval - 1.0:
            self.next_due = None  # time went backwards (a camera's clock, a looped file): start again
        return self.next_due is None or t >= self.next_due - 1e-6

    def take(self, t: float) -> None:
        self.next_due = (self.next_due if self.next_due is not None else t) + self.interval
        if self.next_due <= t:  # fell behind (a gap in the stream): restart from here
            self.next_due = t + self.interval


class FrameReader:
    """Reads one source on its own threads; the consumer calls :meth:`take` when notified."""

    def __init__(
        self,
        source: Source,
        *,
        fps: float,
        resize: int,
        realtime: bool = True,
        read_timeout_s: float = 5.0,
        reconnect_max_s: float = 30.0,
        fail_fast: bool = False,
        shortcuts: bool = True,
        decoder_threads: int = 1,
        on_source: SourceObserver | None = None,
    ) -> None:
        self.source, self.fps, self.resize = source, fps, resize
        self.realtime = realtime or source.live
        self.read_timeout_s, self.reconnect_max_s = read_timeout_s, reconnect_max_s
        self.fail_fast, self.shortcuts, self.decoder_threads = fail_fast, shortcuts, decoder_threads
        self.on_source = on_source or (lambda kind, reason: None)
        self.stats = ReaderStats()
        self.slot = NewestFrame(self.stats, block=not self.realtime)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"reader:{source.display}", daemon=True
        )
        self._lost = False

    # -- the consumer's side ------------------------------------------------------------------

    def start(self) -> None:
        self._supervisor.start()

    def take(self) -> Frame | None:
        return self.slot.take()

    @property
    def finished(self) -> bool:
        """The reader will produce no more frames: its supervisor has ended (or never started)."""
        return self._supervisor.ident is not None and not self._supervisor.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop and join every thread this reader started, all against one deadline: by default
        FFmpeg's own timeout (the read timeout + 1 s) and a margin, after which a thread blocked in a
        read has returned."""
        self._stop.set()
        deadline = time.monotonic() + (self.read_timeout_s + 1.5 if timeout is None else timeout)
        for thread in [self._supervisor, *self._threads]:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        if self.stats.state not in ("ended", "failed"):
            self.stats.state = "stopped"

    def alive_threads(self) -> int:
        return sum(thread.is_alive() for thread in [self._supervisor, *self._threads])

    # -- the supervisor: connect, watch, reconnect --------------------------------------------

    def _supervise(self) -> None:
        try:
            self._reconnecting()
        except Exception as exc:  # a bug here must end the stream visibly, not leave it "live" forever
            log.exception("stream %s: reader failed", self.source.display)
            self._set_state("failed", f"reader failed ({type(exc).__name__})")
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def _reconnecting(self) -> None:
        failures = 0
        while not self._stop.is_set():
            conn = self._attempt()
            if self._stop.is_set():
                break
            if conn.ended and self.stats.sampled == 0:
                self._set_state("failed", "not a video: no frame could be decoded")
                break
            if conn.ended:
                self._set_state("ended", None)
                break
            if not self.source.live or (self.fail_fast and self.stats.sampled == 0):
                self._set_state("failed", conn.reason)
                break
            failures = 0 if conn.delivered else failures + 1
            self._mark_lost(conn.reason)
            delay = min(self.reconnect_max_s, BACKOFF_START_S * 2 ** max(0, failures - 1))
            if self._stop.wait(delay * random.uniform(0.5, 1.0)):
                break
            self.stats.reconnects += 1

    def _attempt(self) -> _Connection:
        conn = _Connection()
        thread = threading.Thread(target=self._read, args=(conn,), name="decode", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        while thread.is_alive() and not self._stop.wait(0.05):
            idle = time.monotonic() - conn.progress
            if idle > self.read_timeout_s:
                conn.reason = f"no data for {idle:.1f} s (read timeout {self.read_timeout_s:g} s)"
                break
        conn.abandoned.set()
        thread.join(0.2)  # usually immediate; a thread stuck in FFmpeg finishes on its own timeout
        return conn

    def _mark_lost(self, reason: str | None) -> None:
        was_live = self.stats.state == "live"
        self._set_state("lost", reason)
        if was_live and not self._stop.is_set():
            self._lost = True
            self.on_source("lost", reason)

    def _set_state(self, state: State, reason: str | None) -> None:
        self.stats.state, self.stats.reason = state, reason
        if state == "lost" and reason:
            log.warning("stream %s lost: %s", self.source.display, reason)
        elif state == "failed":  # the caller reports it (the CLI's error line, the API's state)
            log.info("stream %s failed: %s", self.source.display, reason)

    # -- one connection's thread: open, demux, decode what is due -----------------------------

    def _read(self, conn: _Connection) -> None:
        try:
            container = av.open(
                self.source.target,
                format=self.source.format,
                options=self.source.options(),
                # FFmpeg's own timeout is only the backstop that lets an abandoned thread return:
                # the watchdog (read_timeout_s) decides first, the same way for every source
                timeout=(self.read_timeout_s + 1.0, self.read_timeout_s + 1.0),
            )
        except Exception as exc:  # FFmpeg's errors, OSError, or an unknown device: the reason is all we need
            conn.reason = describe(exc)
            return
        try:
            with container:
                self._decode(container, conn)
        except Exception as exc:
            if not conn.abandoned.is_set():
                conn.reason = describe(exc)

    def _decode(self, container: av.container.InputContainer, conn: _Connection) -> None:
        if not container.streams.video:
            conn.reason = "not a video: the source has no video stream"
            return
        stream = container.streams.video[0]
        context = stream.codec_context
        context.thread_type = "AUTO"
        context.thread_count = self.decoder_threads
        pacing = _Pacing(self.realtime and not self.source.live)
        plan = _DecodePlan(Sampler(self.fps), self.shortcuts, self.stats)
        for packet in container.demux(stream):
            conn.progress = time.monotonic()
            if conn.abandoned.is_set() or self._stop.is_set():
                return
            if packet.size == 0:  # the demuxer's final flush packet: drain the decoder's delayed frames
                self._decode_packet(packet, plan, conn, None)
                continue
            self.stats.frames_in += 1
            t = _packet_time(packet, stream, self.stats.frames_in)
            if not pacing.wait(t, conn):
                return
            if plan.wants(packet, t, context):
                self._decode_packet(packet, plan, conn, t)
        if self.source.live:  # a camera does not end: the server closed the connection or went away
            conn.reason = "the source closed the stream"
        else:
            conn.ended = True

    def _decode_packet(
        self, packet: av.Packet, plan: _DecodePlan, conn: _Connection, packet_t: float | None
    ) -> None:
        start = time.perf_counter()
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:  # one damaged packet: the next keyframe recovers
            return
        for frame in frames:
            # a source without frame timestamps (raw H.264, some MJPEG) is timed by its packets
            t = frame.time if frame.time is not None else packet_t
            if t is None:
                continue
            if not plan.sampler.due(t):
                continue
            plan.sampler.take(t)
            image = self._convert(frame)
            self.stats.decode_s += time.perf_counter() - start
            self._publish(image, t, frame.width, frame.height, conn)
            start = time.perf_counter()
        self.stats.decode_s += time.perf_counter() - start
        self.stats.decoded += len(frames)

    def _convert(self, frame: av.VideoFrame) -> Image.Image:
        if not self.shortcuts:  # the plain way, for the benchmark's comparison: full-size RGB, then Pillow
            image = frame.to_image()
            return image.resize(resized_size(*image.size, self.resize), Image.Resampling.BILINEAR)
        width, height = resized_size(frame.width, frame.height, self.resize)
        return frame.reformat(width=width, height=height, format="rgb24", interpolation="BILINEAR").to_image()

    def _publish(self, image: Image.Image, t: float, width: int, height: int, conn: _Connection) -> None:
        at = time.time() if self.source.live else round(t, 3)
        self.stats.sampled += 1
        frame = Frame(image, at, time.monotonic(), self.stats.sampled, width, height)
        if self.stats.first_frame is None:
            self.stats.first_frame = frame.captured
        if self.stats.state != "live":
            self._set_state("live", None)
            if self._lost:
                self._lost = False
                self.on_source("restored", None)
        conn.delivered += 1
        self.slot.put(frame, lambda: conn.abandoned.is_set() or self._stop.is_set(), conn.touch)


class _DecodePlan:
    """Which packets to decode, learnt from the keyframe spacing seen so far."""

    def __init__(self, sampler: Sampler, shortcuts: bool, stats: ReaderStats) -> None:
        self.sampler, self.shortcuts, self.stats = sampler, shortcuts, stats
        self.last_key: float | None = None
        self.key_gaps: list[float] = []
        self.intra_only = True

    def wants(self, packet: av.Packet, t: float, context: av.codec.context.CodecContext) -> bool:
        if packet.is_keyframe:
            self._keyframe(t)
        else:
            self.intra_only = False
        if not self.shortcuts:
            return True
        if self.intra_only or self.stats.keyframes_only:
            # The next sampled frame will be a keyframe: decode no other packet.
            return packet.is_keyframe and self.sampler.due(t)
        if self.sampler.interval > 2.5 / max(self._rate(context), 1e-6):
            context.skip_frame = "NONREF"  # B-frames feed no other frame; a sample may skip them
        return True

    def _keyframe(self, t: float) -> None:
        if self.last_key is not None and t > self.last_key:
            self.key_gaps = [*self.key_gaps, t - self.last_key][-4:]
        self.last_key = t
        # Keyframes at least as often as samples are due: decoding keyframes alone loses nothing.
        dense = len(self.key_gaps) >= 2 and max(self.key_gaps) <= self.sampler.interval * 1.01
        if self.shortcuts:
            self.stats.keyframes_only = dense

    @staticmethod
    def _rate(context: av.codec.context.CodecContext) -> float:
        rate = getattr(context, "framerate", None) or getattr(context, "rate", None)
        return float(rate) if rate else 25.0


class _Pacing:
    """Replays a file at its own speed (as a camera would send it), or as fast as possible."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.origin: tuple[float, float] | None = None

    def wait(self, t: float, conn: _Connection) -> bool:
        """Sleep until ``t`` is due; False when the connection was abandoned meanwhile."""
        if not self.enabled:
            return True
        if self.origin is None:
            self.origin = (time.monotonic(), t)
        due = self.origin[0] + (t - self.origin[1])
        while (delay := due - time.monotonic()) > 0:
            if conn.abandoned.wait(min(delay, 0.5)):
                return False
            conn.touch()
        return True


def _packet_time(packet: av.Packet, stream: av.video.stream.VideoStream, number: int) -> float:
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is not None and packet.time_base is not None:
        return float(stamp * packet.time_base)
    rate = float(stream.average_rate or 25)
    return number / rate


def describe(exc: BaseException) -> str:
    """One line for a failed open or read, without credentials."""
    if isinstance(exc, ConnectionRefusedError | av.error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, av.error.InvalidDataError):
        return "not a video: FFmpeg found no stream it can decode"
    if isinstance(exc, TimeoutError | av.error.ExitError):
        return "timed out"
    if isinstance(exc, FileNotFoundError | av.error.FileNotFoundError):
        return "not found"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return redact(str(text))

"""Live video servers on loopback for stream tests: RTSP, HTTP and TCP (MPEG-TS) that loop a clip at
real time and that a test can kill, freeze and restart, plus a hung camera and a garbage source.

- :class:`RtspServer`: GStreamer's RTSP server (``gst-rtsp-server`` through the system Python's
  PyGObject) fed by ``ffmpeg -re -stream_loop -1`` over loopback UDP (MPEG-TS, stream copy): one
  shared live session, H.264 over RTP, RTSP over TCP or UDP. Debian packages: see :data:`RTSP_APT`.
- :class:`HttpTsServer` and :class:`TcpTsServer`: ``ffmpeg -listen`` serves exactly one client and
  exits; a supervisor thread starts it again, so each connection gets the clip from its start,
  looping, at real time, and a client that reconnects may be refused for ~0.1-0.3 s in between.
- :class:`StallingServer` (sends some seconds of a clip's MPEG-TS, then nothing, connection open)
  and :class:`GarbageServer` (random bytes): Python threads, no binary needed.

Every process is killed at :meth:`LiveServer.stop`, at interpreter exit, and (``setpriv
--pdeathsig``) when the test process itself dies, even by SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import av
import pytest

HOST = "127.0.0.1"
FFMPEG = "ffmpeg"
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_APT = (
    "apt-get install -y --no-install-recommends ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)
_GST_ELEMENTS = ("udpsrc", "queue", "tsdemux", "h264parse", "rtph264pay")


# -- clips --------------------------------------------------------------------------------------------


def make_clip(
    path: Path,
    images: list[Path],
    seconds_each: float = 3.0,
    fps: int = 25,
    size: tuple[int, int] = (640, 480),
    gop: int = 25,
) -> Path:
    """An H.264 (yuv420p) MP4 slideshow of ``images``, each letterboxed to ``size`` for
    ``seconds_each``, a keyframe every ``gop`` frames (PyAV, no subprocess; see tests/clips.py)."""
    from tests.clips import make_clip as _make_clip

    return _make_clip(Path(path), list(images), seconds_each=seconds_each, fps=fps, size=size, gop=gop)


def clip_to_ts(clip: Path, seconds: float | None = None) -> tuple[bytes, list[tuple[float, int]]]:
    """The clip's first ``seconds`` (all of it when None) remuxed to MPEG-TS (stream copy), and marks
    ``(t, offset)``: about the bytes up to ``offset`` hold the packets up to ``t`` seconds (the muxer
    buffers a little), to send them at real time."""
    buffer = io.BytesIO()
    marks: list[tuple[float, int]] = []
    with av.open(str(clip)) as source, av.open(buffer, "w", format="mpegts") as sink:
        video = source.streams.video[0]
        out = sink.add_stream_from_template(video)
        first = None
        for packet in source.demux(video):
            if packet.dts is None:
                continue
            t = float(packet.dts * packet.time_base)
            first = t if first is None else first
            if seconds is not None and t - first >= seconds:
                break
            packet.stream = out
            sink.mux(packet)
            marks.append((t - first, buffer.tell()))
    return buffer.getvalue(), marks


# -- availability -------------------------------------------------------------------------------------


def ffmpeg_missing() -> str | None:
    """Why the ffmpeg-based servers cannot run here, or None."""
    if shutil.which(FFMPEG) is None:
        return "ffmpeg not installed (apt-get install -y ffmpeg)"
    return None


_rtsp_reason: list[str | None] = []


def rtsp_missing() -> str | None:
    """Why :class:`RtspServer` cannot run here (missing ffmpeg, PyGObject, gst-rtsp-server or a
    GStreamer element), or None. Checked once per process (~0.3 s)."""
    if not _rtsp_reason:
        _rtsp_reason.append(ffmpeg_missing() or _gst_missing())
    return _rtsp_reason[0]


def _gst_missing() -> str | None:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"no {SYSTEM_PYTHON} for GStreamer's RTSP server ({RTSP_APT})"
    check = (
        "import gi\n"
        "for name in ('Gst', 'GstRtsp', 'GstRtspServer'): gi.require_version(name, '1.0')\n"
        "from gi.repository import Gst, GstRtsp, GstRtspServer\n"
        "Gst.init(None)\n"
        f"missing = [e for e in {_GST_ELEMENTS!r} if Gst.ElementFactory.find(e) is None]\n"
        "print(' '.join(missing))\n"
    )
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-I", "-c", check], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"GStreamer check failed ({exc}); {RTSP_APT}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"GStreamer RTSP server unavailable ({last}); {RTSP_APT}"
    if done.stdout.strip():
        return f"GStreamer elements missing: {done.stdout.strip()}; {RTSP_APT}"
    return None


def require_ffmpeg() -> None:
    """Skip the calling test, saying what to install, where ffmpeg is missing."""
    if reason := ffmpeg_missing():
        pytest.skip(reason)


def require_rtsp() -> None:
    """Skip the calling test, saying what to install, where :class:`RtspServer` cannot run."""
    if reason := rtsp_missing():
        pytest.skip(reason)


# -- ports, readiness, processes ----------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nobody listens on now (TCP by default, ``socket.SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def is_listening(port: int) -> bool:
    """Whether a TCP socket listens on ``port`` (read from /proc, without connecting: ffmpeg
    ``-listen 1`` would take a probe's connection for its one client)."""
    wanted = f":{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(f[1].endswith(wanted) and f[3] == "0A" for f in (line.split() for line in lines))


def rtsp_describes(url: str, timeout: float = 5.0) -> bool:
    """Whether an RTSP DESCRIBE of ``url`` answers 200 with a video track (so a client can play)."""
    rest = url.split("://", 1)[1]
    host, port = rest.split("/", 1)[0].rsplit(":", 1)
    request = f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                body += chunk
    except OSError:
        return False
    return head.startswith(b"RTSP/1.0 200") and b"m=video" in body


_PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
# PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, so servers that are started
# from any thread (a test's Timer, say) have their processes forked by this one long-lived thread.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-servers-spawn")


def _spawn(command: list[str], log: io.BufferedRandom) -> subprocess.Popen:
    return subprocess.Popen(
        [*_PDEATHSIG, *command], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
    )


def _end(process: subprocess.Popen, kill: bool, grace: float = 3.0) -> None:
    """Terminate (or SIGKILL) ``process`` and reap it; never returns with it still running."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if kill:
                process.kill()
            else:
                process.terminate()
                os.kill(process.pid, signal.SIGCONT)  # a frozen process acts on SIGTERM only once woken
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log: io.BufferedRandom | None, size: int = 2000) -> str:
    if log is None or log.closed:
        return ""
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-size:].strip()


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


_running: set[LiveServer] = set()
_running_lock = threading.Lock()


@atexit.register
def stop_all() -> None:
    """Kill every server still running (interpreter exit; a test may call it to be sure)."""
    with _running_lock:
        servers = list(_running)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop(kill=True)


# -- the servers --------------------------------------------------------------------------------------


class LiveServer:
    """A server on ``127.0.0.1:port`` (a free port unless given; kept over restarts). Use it as a
    context manager, or call :meth:`start` and :meth:`stop`; :meth:`restart` comes back on the same
    port and URL."""

    scheme = "tcp"
    path = ""
    startup_timeout = 20.0

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._lock = threading.RLock()
        self._started = False
        self.startup_s: float | None = None  # how long the last start took to be ready

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._started

    def start(self, timeout: float | None = None) -> Self:
        """Start and wait until a client can connect (raises RuntimeError, saying why, if not)."""
        with self._lock:
            if self._started:
                return self
            began = time.monotonic()
            with _running_lock:
                _running.add(self)
            self._started = True
            try:
                self._start(began + (timeout or self.startup_timeout))
            except BaseException:
                self.stop(kill=True)
                raise
            self.startup_s = time.monotonic() - began
            return self

    def stop(self, kill: bool = False) -> None:
        """Stop serving: connections end (SIGTERM, or SIGKILL with ``kill``: the kernel closes the
        sockets either way), every process is reaped. Idempotent."""
        with self._lock:
            if self._started:
                self._stop(kill)
                self._started = False
            with _running_lock:
                _running.discard(self)

    def kill(self) -> None:
        """:meth:`stop` with SIGKILL: a server that crashes."""
        self.stop(kill=True)

    def restart(self, kill: bool = False, down_s: float = 0.0, timeout: float | None = None) -> Self:
        """Stop (optionally by SIGKILL), stay down ``down_s`` seconds, start again on the same port."""
        self.stop(kill=kill)
        time.sleep(down_s)
        return self.start(timeout)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Whether a new client can connect, polling up to ``timeout`` s: after each client,
        :class:`HttpTsServer` and :class:`TcpTsServer` refuse connections for ~0.1-0.3 s."""
        return self._started and wait_for(self._ready, timeout)

    def _ready(self) -> bool:
        return True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(kill=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} {'running' if self._started else 'stopped'}>"

    def _start(self, deadline: float) -> None:
        raise NotImplementedError

    def _stop(self, kill: bool) -> None:
        raise NotImplementedError


class _ProcessServer(LiveServer):
    """A server made of child processes, which :meth:`freeze` can stop dead (SIGSTOP) with their
    connections left open: a hung camera."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        super().__init__(port)
        self.clip = Path(clip)
        if not self.clip.is_file():
            raise FileNotFoundError(self.clip)
        self._processes: list[subprocess.Popen] = []
        self._log: io.BufferedRandom | None = None

    @property
    def pids(self) -> list[int]:
        """The ids of the processes running now (for tests that check nothing is left behind)."""
        return [p.pid for p in list(self._processes) if p.poll() is None]

    def freeze(self) -> None:
        """SIGSTOP every process: connections stay open and nothing more is sent, nor refused."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze` (what was held back may then come in a burst)."""
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: int) -> None:
        for process in list(self._processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def _open_log(self) -> io.BufferedRandom:
        self._log = tempfile.TemporaryFile("a+b")  # noqa: SIM115 (closed by _stop); O_APPEND: _tail may seek
        return self._log

    def _fail(self, what: str) -> RuntimeError:
        return RuntimeError(f"{type(self).__name__} at {self.url}: {what}\n{_tail(self._log)}")

    def _stop(self, kill: bool) -> None:
        processes, self._processes = self._processes, []
        for process in processes:
            _end(process, kill)
        if self._log is not None:
            self._log.close()
            self._log = None


_RTSP_SCRIPT = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

Gst.init(None)
port, udp_port, mount = sys.argv[1], int(sys.argv[2]), sys.argv[3]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
# The queues keep UDP reads apart from the payloader's pacing (without them frames are lost).
factory.set_launch(
    f'( udpsrc address=127.0.0.1 port={udp_port} buffer-size=4194304 '
    'caps="video/mpegts,systemstream=(boolean)true" ! queue ! tsdemux ! h264parse config-interval=-1 '
    '! queue ! rtph264pay name=pay0 pt=96 config-interval=-1 )'
)
factory.set_shared(True)
server.get_mount_points().add_factory(mount, factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
# One media for every client, prepared now and never unprepared (this reference holds it): DESCRIBE
# answers at once, clients join a running stream, and none gets the 503 a shared media answers while
# it is torn down after its last client (gst-rtsp-server 1.22).
url = GstRtsp.RTSPUrl.parse(f"rtsp://127.0.0.1:{port}{mount}")[1]
media = factory.construct(url)
thread = server.get_thread_pool().get_thread(GstRtspServer.RTSPThreadType.MEDIA, GstRtspServer.RTSPContext())
if not media.prepare(thread):
    sys.exit("the media did not prepare: no MPEG-TS H.264 from ffmpeg on udp port %d" % udp_port)
GLib.MainLoop().run()
"""


class RtspServer(_ProcessServer):
    """``rtsp://127.0.0.1:PORT/clip``: ``clip`` (H.264) looped forever at real time, as one live
    session that clients join at any time (each waits for the next keyframe). Two processes: the
    GStreamer RTSP server and ffmpeg feeding it MPEG-TS over loopback UDP. Call :func:`require_rtsp`
    first. A SIGKILL (:meth:`kill`) closes clients' TCP connections at once: PyAV sees end of stream."""

    scheme = "rtsp"

    def __init__(self, clip: Path, port: int | None = None, mount: str = "/clip") -> None:
        super().__init__(clip, port)
        self.path = mount
        self.udp_port = free_port(socket.SOCK_DGRAM)

    def _start(self, deadline: float) -> None:
        if reason := rtsp_missing():
            raise RuntimeError(f"RtspServer cannot run here: {reason}")
        log = self._open_log()
        server = [SYSTEM_PYTHON, "-I", "-c", _RTSP_SCRIPT, str(self.port), str(self.udp_port), self.path]
        feeder = [
            FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
            "-i", str(self.clip), "-map", "0:v:0", "-c", "copy", "-f", "mpegts",
            f"udp://{HOST}:{self.udp_port}?pkt_size=1316",
        ]  # fmt: skip
        for command in (server, feeder):
            self._processes.append(_spawner.submit(_spawn, command, log).result())
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise self._fail(
                        f"{Path(process.args[len(_PDEATHSIG)]).name} exited ({process.returncode})"
                    )
            if rtsp_describes(self.url, timeout=min(5.0, max(0.1, deadline - time.monotonic()))):
                return
            time.sleep(0.1)
        raise self._fail("no answer to DESCRIBE in time")

    def _ready(self) -> bool:
        return rtsp_describes(self.url, timeout=2.0)


class _ListenTsServer(_ProcessServer):
    """``ffmpeg -re -stream_loop -1 -i clip -c copy -f mpegts -listen ...``: ffmpeg serves one client
    and exits when it leaves, so a supervisor thread starts it again (each connection gets the clip
    from its start; between two, connections are refused for ~0.1-0.3 s)."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        super().__init__(clip, port)
        self.connections_served = 0
        self._plock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def _output(self) -> list[str]:
        raise NotImplementedError

    def _start(self, deadline: float) -> None:
        if reason := ffmpeg_missing():
            raise RuntimeError(f"{type(self).__name__} cannot run here: {reason}")
        log = self._open_log()
        self._stopping = threading.Event()
        ready = threading.Event()
        command = [
            FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
            "-i", str(self.clip), "-map", "0:v:0", "-c", "copy", "-f", "mpegts", *self._output(),
        ]  # fmt: skip
        self._supervisor = threading.Thread(
            target=self._supervise,
            args=(command, log, ready, self._stopping),
            name=f"{self!r} supervisor",
            daemon=True,
        )
        self._supervisor.start()
        while time.monotonic() < deadline:
            if is_listening(self.port):
                ready.set()
                return
            if not self._supervisor.is_alive():
                raise self._fail("ffmpeg exited at once, again and again")
            time.sleep(0.02)
        raise self._fail("not listening in time")

    def _ready(self) -> bool:
        return is_listening(self.port)

    def _supervise(
        self, command: list[str], log: io.BufferedRandom, ready: threading.Event, stopping: threading.Event
    ) -> None:
        failures = 0
        while not stopping.is_set():
            began = time.monotonic()
            with self._plock:
                if stopping.is_set():
                    return
                process = _spawn(command, log)  # forked by this thread, which outlives it (pdeathsig)
                self._processes.append(process)
            process.wait()
            with self._plock:
                if process in self._processes:
                    self._processes.remove(process)
            if stopping.is_set():
                return
            self.connections_served += 1
            failures = failures + 1 if time.monotonic() - began < 0.5 else 0
            if failures >= 5 and not ready.is_set():  # port taken, clip unreadable...: start() says why
                return
            stopping.wait(min(0.02 * 2**failures, 1.0))

    def _stop(self, kill: bool) -> None:
        self._stopping.set()
        with self._plock:
            processes = list(self._processes)
        for process in processes:
            _end(process, kill)
        if self._supervisor is not None:
            self._supervisor.join(5)
            self._supervisor = None
        super()._stop(kill)


class HttpTsServer(_ListenTsServer):
    """``http://127.0.0.1:PORT/clip.ts``: MPEG-TS (H.264 copied) at real time, looping; one client at
    a time, and each connection starts at the clip's beginning (see :class:`_ListenTsServer`)."""

    scheme = "http"
    path = "/clip.ts"

    def _output(self) -> list[str]:
        return ["-listen", "1", f"http://{HOST}:{self.port}{self.path}"]


class TcpTsServer(_ListenTsServer):
    """``tcp://127.0.0.1:PORT``: raw MPEG-TS over TCP, otherwise as :class:`HttpTsServer`."""

    scheme = "tcp"

    def _output(self) -> list[str]:
        return [f"tcp://{HOST}:{self.port}?listen=1"]


# -- Python servers: a hung camera, a garbage source ----------------------------------------------------

_HTTP_HEADER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
)


class _Life:
    """One run of a thread server, between a start and its stop: what its threads look at."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.kill = False  # end connections with RST rather than FIN


def _sleep_until(moment: float, life: _Life) -> None:
    while (left := moment - time.monotonic()) > 0:
        if life.stopping.wait(min(left, 0.1)):
            raise ConnectionAbortedError("server stopping")


class _ThreadServer(LiveServer):
    """Accepts any number of clients, each served by ``_serve(conn, stop)`` in its own thread; with
    ``http`` the request is read and a 200 header sent first (url ``http://.../clip.ts``)."""

    def __init__(self, port: int | None = None, http: bool = False) -> None:
        super().__init__(port)
        self.http = http
        self.scheme, self.path = ("http", "/clip.ts") if http else ("tcp", "")
        self.connections = 0
        self._life = _Life()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._handlers: list[threading.Thread] = []

    def _start(self, deadline: float) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        while True:
            try:
                listener.bind((HOST, self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.05)
        listener.listen(16)
        listener.settimeout(0.1)
        self._listener, self._life, self._handlers = listener, _Life(), []
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener, self._life), name=f"{self!r} accept", daemon=True
        )
        self._acceptor.start()

    def _accept(self, listener: socket.socket, life: _Life) -> None:
        while not life.stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            handler = threading.Thread(
                target=self._handle, args=(conn, life), name=f"{self!r} client", daemon=True
            )
            self._handlers.append(handler)
            handler.start()

    def _handle(self, conn: socket.socket, life: _Life) -> None:
        conn.settimeout(0.2)
        try:
            if self.http:
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    if life.stopping.is_set():
                        return
                    with contextlib.suppress(TimeoutError):
                        chunk = conn.recv(4096)
                        if not chunk:
                            return
                        request += chunk
                self._send(conn, _HTTP_HEADER, life)
            self._serve(conn, life)
        except OSError:
            pass
        finally:
            if life.kill:  # RST, as the kernel does for a crashed server
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    def _serve(self, conn: socket.socket, life: _Life) -> None:
        raise NotImplementedError

    def _send(self, conn: socket.socket, data: bytes, life: _Life) -> None:
        """All of ``data`` (raises OSError on stop or when the client has gone)."""
        view = memoryview(data)
        while view:
            if life.stopping.is_set():
                raise ConnectionAbortedError("server stopping")
            try:
                view = view[conn.send(view[:65536]) :]
            except TimeoutError:
                continue

    def _hang(self, conn: socket.socket, life: _Life) -> None:
        """Keep the connection open, sending nothing, until the client closes it or the server stops."""
        while not life.stopping.is_set():
            readable, _, _ = select.select([conn], [], [], 0.1)
            if readable and not conn.recv(65536):
                return

    def _stop(self, kill: bool) -> None:
        self._life.kill = kill
        self._life.stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(2)
        if self._listener is not None:
            self._listener.close()
        for handler in self._handlers:
            handler.join(2)
        self._acceptor, self._listener, self._handlers = None, None, []


class StallingServer(_ThreadServer):
    """A camera that hangs: each client gets the first ``seconds`` of ``clip`` as MPEG-TS (at real
    time, or at once with ``realtime=False``), then nothing more, the connection held open (until the
    client closes it or the server stops). ``tcp://127.0.0.1:PORT``, or ``http://.../clip.ts``."""

    def __init__(
        self,
        clip: Path,
        seconds: float = 2.0,
        port: int | None = None,
        http: bool = False,
        realtime: bool = True,
    ) -> None:
        super().__init__(port, http)
        self.data, self.marks = clip_to_ts(Path(clip), seconds)
        self.realtime = realtime

    def _serve(self, conn: socket.socket, life: _Life) -> None:
        sent = 0
        if self.realtime:
            began = time.monotonic()
            for t, offset in self.marks:
                if offset > sent:
                    _sleep_until(began + t, life)
                    self._send(conn, self.data[sent:offset], life)
                    sent = offset
        self._send(conn, self.data[sent:], life)
        self._hang(conn, life)


class GarbageServer(_ThreadServer):
    """Random bytes (seeded), ``rate`` bytes/s or as fast as the client reads, until the client closes
    the connection or the server stops; after ``limit`` bytes, if given, it hangs instead."""

    def __init__(
        self,
        port: int | None = None,
        http: bool = False,
        rate: int | None = None,
        limit: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(port, http)
        self.rate, self.limit, self.seed = rate, limit, seed

    def _serve(self, conn: socket.socket, life: _Life) -> None:
        generator = random.Random(self.seed)
        sent, began, chunk = 0, time.monotonic(), 16384
        while self.limit is None or sent < self.limit:
            size = chunk if self.limit is None else min(chunk, self.limit - sent)
            self._send(conn, generator.randbytes(size), life)
            sent += size
            if self.rate:
                wait = began + sent / self.rate - time.monotonic()
                if wait > 0 and life.stopping.wait(wait):
                    return
        self._hang(conn, life)

"""What a hostile large request body costs the service: ``.venv/bin/python benchmarks/hostile_bodies.py``.

Starts one ``recognizer serve`` on a free loopback port (the default model from the cache ``make
setup`` filled, ``--threads 2``, ``--no-access-log``) and waits for ``/readyz``. A "victim" client
on its own thread keeps doing sequential ``GET /healthz`` + ``POST /v1/classify`` (a 640-px JPEG of
scikit-image's cat, multipart field ``file``); its round trip is timed alone for ``--baseline-seconds``
(the baseline row), then while each attack runs from a raw socket:

a. a 200 MB chunked body of v2 JSON that never ends (``{"inputs":[{... "data":[0.1,0.1,...``) to
   ``POST /v2/models/efficientnet_lite0/infer``;
b. the same route with ``Content-Length: 10000000000`` declared, headers only;
c. a 200 MB chunked ``image/jpeg`` body to ``POST /v1/classify``;
d. a slow client: a JPEG (padded with zeros) trickled at ``--trickle-rate`` bytes/s for
   ``--trickle-seconds`` to ``/v1/classify``;
e. well-formed v2 JSON bodies 1 MB over and 64 KB under the route's limit, chunked
   (``--skip-near-limit`` leaves them out).

For each case: the status and problem code, the time from the first byte sent to the response's
status line, how many bytes the attacker had handed to its kernel by then, whether the server
closed the connection, the server's VmRSS before and its peak after (VmHWM, reset before each case
by writing 5 to /proc/PID/clear_refs, so a case is not charged for an earlier one's peak), the
server's CPU time, and the victim's p50/p99/max while the attack ran (requests overlapping the
attack, which counts as at least ``--min-window`` seconds) and, for comparison on a machine whose
load drifts, in the ``--control-seconds`` just before it. Like a hostile client, an attacker
keeps sending after it has its answer until the server closes the connection
(``--stop-on-answer`` to stop at the answer). The victim's own requests also allocate, so compare
RSS growth with the baseline row's; memory a case frees may stay in the allocator's heap and lower
the next case's growth, which is why e's over-limit body goes before its under-limit one. MB here
is 2**20 bytes. Prints the CPU model, a markdown table and whether ``/healthz`` still answers 200 at
the end; writes ``benchmarks/results/hostile.json``. All traffic goes to 127.0.0.1, every wait is
bounded, and the server is terminated at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from serving import cpu_seconds, free_port, status_kb, wait_until_up

from recognizer.api.limits import BodyLimits
from recognizer.config import Settings

RESULTS = Path(__file__).parent / "results"
BIN = Path(sys.executable).parent
MB = 1024 * 1024
V2_PATH = "/v2/models/efficientnet_lite0/infer"
V1_PATH = "/v1/classify"
JSON, JPEG = "application/json", "image/jpeg"
V2_HEAD = b'{"inputs":[{"name":"input","shape":[64,3,224,224],"datatype":"FP32","data":['
NUMBERS = b"0.1," * (MB // 4)  # 1 MB of a JSON array's elements
ZEROS = bytes(MB)
#: how long one blocking send may wait for the server to read before the attacker gives up
SEND_TIMEOUT_S = 10.0
#: after sending, how long to wait for the server to close the connection before closing it ourselves
CLOSE_GRACE_S = 0.5


def cat_jpeg() -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(data.chelsea())).resize((640, 427)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def reset_peak(pid: int) -> bool:
    """Set a process's VmHWM back to its current VmRSS (Linux: 5 into /proc/PID/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Victim(threading.Thread):
    """Sequential GET /healthz + POST /v1/classify; ``samples`` holds (start, seconds, ok)."""

    def __init__(self, url: str, jpeg: bytes) -> None:
        super().__init__(daemon=True)
        self.url, self.jpeg = url, jpeg
        self.samples: list[tuple[float, float, bool]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stopping.is_set():
                start = time.perf_counter()
                try:
                    ok = client.get("/healthz").status_code == 200
                    files = {"file": ("cat.jpg", self.jpeg, "image/jpeg")}
                    ok = client.post("/v1/classify", files=files).status_code == 200 and ok
                except httpx.HTTPError:
                    ok = False
                self.samples.append((start, time.perf_counter() - start, ok))

    def during(self, start: float, end: float) -> dict:
        """Latency of the round trips that overlapped [start, end]."""
        hits = [(s, d, ok) for s, d, ok in list(self.samples) if s < end and s + d > start]
        times = np.array([d for _, d, _ in hits]) * 1e3
        if not len(times):
            return {"requests": 0, "errors": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
        return {
            "requests": len(hits),
            "errors": sum(not ok for _, _, ok in hits),
            "p50_ms": round(float(np.percentile(times, 50)), 1),
            "p99_ms": round(float(np.percentile(times, 99)), 1),
            "max_ms": round(float(times.max()), 1),
        }


def request_head(path: str, content_type: str, length: int | None = None) -> bytes:
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}", framing]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def v2_json(total: int, close: bool) -> Iterator[bytes]:
    """About ``total`` bytes of a v2 request with an FP32 tensor's data as "0.1,0.1,...", in 1 MB pieces;
    a complete JSON document when ``close``, else cut off mid-array."""
    tail = b"0.1]}]}" if close else b""
    units = (total - len(V2_HEAD) - len(tail)) // 4
    first = min(units, (MB - len(V2_HEAD)) // 4)
    yield V2_HEAD + b"0.1," * first
    units -= first
    while units >= MB // 4:
        yield NUMBERS
        units -= MB // 4
    if units or tail:
        yield b"0.1," * units + tail


def junk(total: int, first: bytes) -> Iterator[bytes]:
    """``first``, then zeros, ``total`` bytes in all, in pieces of at most 1 MB."""
    yield first
    left = total - len(first)
    while left > 0:
        yield ZEROS[: min(MB, left)]
        left -= MB


def trickle(data: bytes, rate: int, seconds: float) -> Iterator[bytes]:
    """``data`` padded with zeros to ``rate * seconds`` bytes, a tenth of a second's worth at a time."""
    data = data + bytes(max(0, int(rate * seconds) - len(data)))
    step = max(1, rate // 10)
    next_at = time.perf_counter()
    for at in range(0, len(data), step):
        time.sleep(max(0.0, next_at - time.perf_counter()))
        next_at += 0.1
        yield data[at : at + step]


class Attack:
    """One request on a raw socket: the main thread sends, a reader thread times the status line."""

    def __init__(self, port: int, head: bytes, body: Iterable[bytes], chunked: bool, stop_on_answer: bool):
        self.port, self.head, self.body = port, head, body
        self.chunked, self.stop_on_answer = chunked, stop_on_answer
        self.sent = 0
        self.start = 0.0
        self.answer_s: float | None = None
        self.sent_at_answer: int | None = None
        self.status: int | None = None
        self.code: str | None = None
        self.closed_s: float | None = None
        self.read_error: str | None = None
        self.send_error: str | None = None
        self.body_complete = False
        self.done = threading.Event()

    def run(self, timeout: float) -> dict:
        deadline = time.perf_counter() + timeout
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=SEND_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = threading.Thread(target=self._read, args=(sock,), daemon=True)
        self.start = time.perf_counter()
        reader.start()
        try:
            self._send(sock, self.head)
            for piece in self.body:
                if (self.stop_on_answer and self.status is not None) or self.closed_s is not None:
                    break
                if time.perf_counter() > deadline:
                    self.send_error = "attack timeout"
                    break
                self._send(sock, b"%x\r\n%b\r\n" % (len(piece), piece) if self.chunked else piece)
            else:
                if self.chunked:
                    self._send(sock, b"0\r\n\r\n")
                self.body_complete = True
        except OSError as exc:  # the server answered and closed, reset, or stopped reading
            self.send_error = type(exc).__name__
        sent_s = time.perf_counter() - self.start
        while self.status is None and reader.is_alive() and time.perf_counter() < deadline:
            time.sleep(0.005)
        grace = time.perf_counter() + CLOSE_GRACE_S
        while self.closed_s is None and reader.is_alive() and time.perf_counter() < grace:
            time.sleep(0.005)
        self.done.set()
        reader.join(timeout=5)
        sock.close()
        return {
            "status": self.status,
            "code": self.code,
            "answer_s": None if self.answer_s is None else round(self.answer_s, 3),
            "sent_mb_at_answer": None if self.sent_at_answer is None else round(self.sent_at_answer / MB, 1),
            "sent_mb": round(self.sent / MB, 1),
            "send_s": round(sent_s, 2),
            "body_complete": self.body_complete,
            "send_error": self.send_error,
            "server_closed_after_s": None if self.closed_s is None else round(self.closed_s, 3),
            "read_error": self.read_error,
        }

    def _send(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        self.sent += len(data)

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        while not self.done.is_set():
            if not select.select([sock], [], [], 0.05)[0]:
                continue
            try:
                data = sock.recv(65536)
            except OSError as exc:
                self.read_error = type(exc).__name__
                return
            now = time.perf_counter() - self.start
            if not data:
                self.closed_s = now
                return
            buffer += data
            if self.answer_s is None and b"\r\n" in buffer:
                self.answer_s, self.sent_at_answer = now, self.sent
            if self.status is None:
                self._parse(buffer)

    def _parse(self, buffer: bytes) -> None:
        head, found, body = buffer.partition(b"\r\n\r\n")
        if not found:
            return
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        if len(body) < int(fields.get("content-length", "0")):
            return
        try:
            self.code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            self.code = None
        self.status = int(lines[0].split()[1])


def run_case(name, attack, pid, victim, args) -> dict:
    quiet = time.perf_counter()
    time.sleep(args.control_seconds)  # the victim alone just before: the machine's load drifts
    peak_reset = reset_peak(pid)
    rss_before, cpu_before = status_kb(pid, "VmRSS"), cpu_seconds(pid)
    start = time.perf_counter()
    result = attack.run(args.attack_timeout)
    end = max(time.perf_counter(), start + args.min_window)
    time.sleep(max(0.0, end - time.perf_counter()) + 0.3)  # let the victim finish its round trip
    hwm_after, rss_after = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
    row = {
        "case": name,
        **result,
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "peak_growth_mb": round((hwm_after - rss_before) / 1024, 1),
        "peak_was_reset": peak_reset,
        "server_cpu_s": round(cpu_seconds(pid) - cpu_before, 2),
        "victim": victim.during(start, end),
        "victim_before": victim.during(quiet, start),
    }
    print(
        f"{name}: {row['status']} {row['code']} in {row['answer_s']} s, +{row['peak_growth_mb']} MB, "
        f"victim {row['victim']}, just before {row['victim_before']}",
        file=sys.stderr,
    )
    return row


def baseline(pid, victim, seconds: float) -> dict:
    peak_reset = reset_peak(pid)
    rss_before, cpu_before = status_kb(pid, "VmRSS"), cpu_seconds(pid)
    start = time.perf_counter()
    time.sleep(seconds)
    end = time.perf_counter()
    return {
        "case": "baseline (victim alone)",
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(status_kb(pid, "VmRSS") / 1024, 1),
        "peak_growth_mb": round((status_kb(pid, "VmHWM") - rss_before) / 1024, 1),
        "peak_was_reset": peak_reset,
        "server_cpu_s": round(cpu_seconds(pid) - cpu_before, 2),
        "victim": victim.during(start, end),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| case | status | time to answer | MB sent by then | server closed | RSS growth MB "
        "(VmHWM after - VmRSS before) | server CPU s | victim p50 / p99 / max ms during (n, errors) "
        "| victim p50 / p99 / max ms just before |",
        "|---|---|---:|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        v, before = r["victim"], r.get("victim_before")
        before = "-" if before is None else f"{before['p50_ms']} / {before['p99_ms']} / {before['max_ms']}"
        status = f"{r['status']} {r['code'] or ''}".strip() if "status" in r else "-"
        answer = "-" if r.get("answer_s") is None else f"{r['answer_s'] * 1e3:.0f} ms"
        sent = "-" if r.get("sent_mb_at_answer") is None else f"{r['sent_mb_at_answer']} of {r['sent_mb']}"
        closed = r.get("server_closed_after_s")
        closed = "-" if "status" not in r else ("no" if closed is None else f"after {closed * 1e3:.0f} ms")
        lines.append(
            f"| {r['case']} | {status} | {answer} | {sent} | {closed} | {r['peak_growth_mb']} | "
            f"{r['server_cpu_s']} | {v['p50_ms']} / {v['p99_ms']} / {v['max_ms']} "
            f"({v['requests']}, {v['errors']}) | {before} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2, help="`recognizer serve --threads`")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--body-mb", type=int, default=200, help="size of the large chunked bodies")
    parser.add_argument("--min-window", type=float, default=3.0, help="victim window per case, at least")
    parser.add_argument(
        "--control-seconds", type=float, default=2.0, help="victim alone before each case, for comparison"
    )
    parser.add_argument("--attack-timeout", type=float, default=60.0, help="most seconds one attack may take")
    parser.add_argument("--trickle-rate", type=int, default=10_000, help="bytes/s of the slow client")
    parser.add_argument("--trickle-seconds", type=float, default=10.0)
    parser.add_argument("--skip-near-limit", action="store_true", help="leave out case e")
    parser.add_argument("--stop-on-answer", action="store_true", help="attackers stop sending once answered")
    parser.add_argument("--serve-args", default="", help="extra `recognizer serve` flags")
    args = parser.parse_args()

    jpeg = cat_jpeg()
    load_start = os.getloadavg()
    limits = BodyLimits.from_settings(Settings())  # the server builds its own from the same environment
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(BIN / "recognizer"),
        "serve",
        "--port",
        str(port),
        "--threads",
        str(args.threads),
        "--no-access-log",
        *args.serve_args.split(),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim = Victim(url, jpeg)
    rows: list[dict] = []
    healthy = False
    try:
        wait_until_up(url + "/readyz", server, accept=lambda status: status == 200)
        victim.start()
        time.sleep(1.0)  # warm-up: the first requests pay for lazy allocations
        rows.append(baseline(server.pid, victim, args.baseline_seconds))
        big = args.body_mb * MB
        limit = limits.for_path(V2_PATH, binary_tensors=False)  # these bodies are all JSON
        under, over = limit - 64 * 1024, limit + MB
        trickled = f"{args.trickle_rate / 1e3:g} KB/s for {args.trickle_seconds:g} s"
        cases = [  # name, path, content type, body pieces, declared length (None: chunked)
            (f"a. {args.body_mb} MB chunked v2 JSON", V2_PATH, JSON, v2_json(big, False), None),
            ("b. v2 declaring Content-Length 10 GB, headers only", V2_PATH, JSON, [], 10_000_000_000),
            (
                f"c. {args.body_mb} MB chunked image/jpeg to /v1/classify",
                V1_PATH,
                JPEG,
                junk(big, jpeg),
                None,
            ),
            (
                f"d. slow client, {trickled} to /v1/classify",
                V1_PATH,
                JPEG,
                trickle(jpeg, args.trickle_rate, args.trickle_seconds),
                None,
            ),
            (
                f"e1. v2 JSON {over / MB:.1f} MB, 1 MB over the limit",
                V2_PATH,
                JSON,
                v2_json(over, True),
                None,
            ),
            (f"e2. v2 JSON {under / MB:.1f} MB, 64 KB under", V2_PATH, JSON, v2_json(under, True), None),
        ]
        if args.skip_near_limit:
            cases = cases[:4]
        for name, path, content_type, body, length in cases:
            head = request_head(path, content_type, length)
            attack = Attack(port, head, body, chunked=length is None, stop_on_answer=args.stop_on_answer)
            rows.append(run_case(name, attack, server.pid, victim, args))
        victim.stopping.set()
        victim.join(timeout=35)
        try:
            healthy = server.poll() is None and httpx.get(url + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            healthy = False
    finally:
        victim.stopping.set()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    result = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_start_end": [load_start, os.getloadavg()],
        "command": command[1:],
        "body_limits": {
            "v2_infer_json": limits.for_path(V2_PATH, binary_tensors=False),
            "v2_infer_binary": limits.for_path(V2_PATH),
            "v1_classify": limits.for_path("/v1/classify"),
        },
        "stop_on_answer": args.stop_on_answer,
        "rows": rows,
        "healthy_at_end": healthy,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hostile.json").write_text(json.dumps(result, indent=2))
    print(f"CPU: {result['cpu']} ({result['cores']} cores); server: recognizer {' '.join(command[1:])}")
    start_load, end_load = (", ".join(f"{x:.1f}" for x in load) for load in result["load_average_start_end"])
    print(f"load average at the start: {start_load}; at the end: {end_load}")
    print(
        f"body limits: v2 infer {limits.for_path(V2_PATH, binary_tensors=False):,} bytes as JSON, "
        f"{limits.for_path(V2_PATH):,} with binary tensors, "
        f"/v1/classify {limits.for_path('/v1/classify'):,} bytes\n"
    )
    print(table(rows))
    print(f"\nserver healthy at the end (/healthz 200): {'yes' if healthy else 'NO'}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())

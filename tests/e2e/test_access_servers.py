"""Access control on real `recognizer serve` processes, as an operator deploys it:

* safe default: a network address with no keys or users refuses to start, in one line naming the
  fixes; with a key (or --allow-anonymous) it starts, health stays open, classify needs the key;
* rate limits shared by two workers through Redis are exact (30 allowed, 30 refused), where each
  worker counting alone (memory storage) lets more through;
* Redis stopped mid-test: ``open`` lets requests through, ``closed`` answers 503
  rate_limiter_unavailable with Retry-After; health answers either way, nothing answers 500, and
  the limits come back with Redis; a Redis that hangs does not stall health checks;
* a malformed rate-limit setting is refused at start, in one line;
* schemathesis against a server with RECOGNIZER_AUTH=on, with and without a key: no 5xx (and,
  with a key, every check);
* TLS (--ssl-certfile/--ssl-keyfile, or RECOGNIZER_SSL_CERTFILE/KEYFILE): HSTS on every answer,
  the session cookie marked Secure.

Each server gets its own data dir under tmp_path. Tests that need Redis (127.0.0.1:6379) skip,
saying why, where it is absent; a test that stops Redis starts it again, whatever happens, and
every test deletes only the rate-limit keys of its own API keys.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import _free_port
from tests.e2e.test_openapi_conformance import run_schemathesis
from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.slow

RECOGNIZER = Path(sys.executable).with_name("recognizer")
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip
ALL_SCOPES = "classify,jobs,streams,history:read,history:delete,metrics,admin"
CATS = {"tabby", "tiger cat", "Egyptian cat"}
PROBLEM = "application/problem+json"


# -- servers ---------------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    data_dir: Path
    verify: bool = True

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", verify=self.verify, **({"timeout": 30} | kwargs))

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", verify=self.verify, **({"timeout": 30} | kwargs))


def environment(tmp_path: Path, artifact_cache: Path, data_dir: Path, env: dict[str, str] | None = None):
    """This process's environment without any RECOGNIZER_* setting of its own, plus the test's."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith(("RECOGNIZER_", "PROMETHEUS_"))}
    return base | {
        "TORCH_HOME": str(tmp_path / "torch-home"),
        "RECOGNIZER_CACHE_DIR": str(artifact_cache),
        "RECOGNIZER_DATA_DIR": str(data_dir),
        "RECOGNIZER_THREADS": "1",
        **(env or {}),
    }


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [RECOGNIZER, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"recognizer {' '.join(args)}: {done.stderr}"
    return done


def create_key(env: dict[str, str], scopes: str = "classify", *more: str) -> str:
    token = cli(env, "keys", "create", "--name", "e2e", "--scopes", scopes, *more).stdout.strip()
    assert token.startswith("rk_") and "\n" not in token
    return token


@contextmanager
def serving(
    tmp_path: Path,
    artifact_cache: Path,
    name: str,
    *args: str,
    env: dict[str, str] | None = None,
    workers: int = 1,
    https: bool = False,
) -> Iterator[Server]:
    """`recognizer serve ARGS` on a free port with the data dir ``tmp_path/name``, ready (every
    worker) when it is yielded; killed with its workers afterwards."""
    data_dir = tmp_path / name
    environ = environment(tmp_path, artifact_cache, data_dir, env)
    port = _free_port()
    log = tmp_path / f"{name}.log"
    command = [RECOGNIZER, "serve", "--port", str(port), "--workers", str(workers), "--no-access-log", *args]
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=environ, stdout=sink, stderr=sink, start_new_session=True)
    server = Server(f"{'https' if https else 'http'}://127.0.0.1:{port}", process, log, data_dir, not https)
    try:
        _wait_ready(server, in_a_row=10 if workers > 1 else 1)
        yield server
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        assert "Traceback" not in log.read_text(), log.read_text()[-4000:]


def _wait_ready(server: Server, in_a_row: int, timeout: float = 180.0) -> None:
    """/readyz 200, ``in_a_row`` times in a row (it reaches one worker at a time)."""
    deadline, seen = time.monotonic() + timeout, 0
    while seen < in_a_row:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"server not ready in {timeout}s:\n{server.log.read_text()[-4000:]}")
        try:
            seen = seen + 1 if server.get("/readyz", timeout=2).status_code == 200 else 0
        except httpx.HTTPError:
            seen = 0
        if not seen:
            time.sleep(0.2)


def refusal(env: dict[str, str], *args: str, timeout: float = 15.0) -> tuple[str, float]:
    """`recognizer serve ARGS` must exit 2 within ``timeout`` with one error line and no traceback:
    (that line, seconds taken)."""
    log = Path(env["RECOGNIZER_DATA_DIR"]).with_suffix(".refusal.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as sink:
        command = [RECOGNIZER, "serve", "--port", str(_free_port()), *args]
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink, start_new_session=True)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        pytest.fail(f"still running {timeout:.0f} s later instead of refusing:\n{log.read_text()[-3000:]}")
    finally:
        with suppress(ProcessLookupError):  # workers of a master that did exit
            os.killpg(process.pid, signal.SIGKILL)
    seconds, output = time.monotonic() - started, log.read_text()
    assert code == 2 and "Traceback" not in output, f"exit {code}:\n{output[-3000:]}"
    errors = [line for line in output.splitlines() if line.startswith("recognizer: error:")]
    assert len(errors) == 1, output
    return errors[0], seconds


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def cat_jpeg(cat_photo) -> bytes:
    return jpeg_bytes(cat_photo, quality=92)


def classify(server: Server, photo: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return server.post("/v1/classify", files={"file": ("cat.jpg", photo, "image/jpeg")}, headers=headers)


# -- Redis -----------------------------------------------------------------------------------------


@dataclass
class Redis:
    url: str
    client: object
    key_ids: list[str] = field(default_factory=list)

    def up(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def own(self, token: str) -> str:
        """Remember an API key whose limit counters this test must delete afterwards."""
        key_id = token.split("_")[1]
        self.key_ids.append(key_id)
        return key_id

    def counters(self, key_id: str) -> list[bytes]:
        return list(self.client.scan_iter(match=f"LIMITS:*key:{key_id}*"))

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        while self.up():
            assert time.monotonic() < deadline, "redis-server did not stop"
            time.sleep(0.05)

    def start(self) -> None:
        if self.up():
            return
        subprocess.run(REDIS_START, capture_output=True, timeout=30, check=True)
        deadline = time.monotonic() + 10
        while not self.up():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Redis down inside the block, and running again after it, whatever happened."""
        self.stop()
        try:
            yield
        finally:
            self.start()


@pytest.fixture
def redis() -> Iterator[Redis]:
    module = pytest.importorskip(
        "redis", reason="the redis package is missing: pip install 'recognizer[redis]'"
    )
    client = module.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    handle = Redis(REDIS_URL, client)
    if not handle.up():
        client.close()
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: start redis-server on 127.0.0.1:6379")
    try:
        yield handle
    finally:
        handle.start()  # whatever the test did, Redis runs afterwards
        for key_id in handle.key_ids:  # only this test's counters, never FLUSHALL
            names = handle.counters(key_id)
            if names:
                client.delete(*names)
        client.close()


# -- load ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None
    code: str | None
    content_type: str
    seconds: float


def hammer(server: Server, path: str, headers: dict[str, str], total: int, threads: int = 6) -> list[Answer]:
    """``total`` GETs from ``threads`` threads, each on a new connection (so both workers of a
    two-worker server take some); every answer, in no particular order."""
    numbers, answers, lock = itertools.count(), [], threading.Lock()

    def client() -> None:
        while next(numbers) < total:
            start = time.monotonic()
            try:
                response = server.get(path, headers=headers | {"Connection": "close"})
            except httpx.TransportError:  # no answer at all: status 0, which no test allows
                answer = Answer(0, None, None, "", time.monotonic() - start)
            else:
                problem = response.headers["content-type"] == PROBLEM
                answer = Answer(
                    response.status_code,
                    response.headers.get("Retry-After"),
                    response.json()["code"] if problem else None,
                    response.headers["content-type"],
                    time.monotonic() - start,
                )
            with lock:
                answers.append(answer)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert not worker.is_alive(), "a client thread is stuck"
    assert len(answers) == total
    return answers


def assert_no_server_error(answers: list[Answer], allowed: set[int]) -> Counter[int]:
    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) <= allowed, f"statuses: {dict(statuses)}"
    return statuses


# -- a. safe default -------------------------------------------------------------------------------


def test_a_network_address_needs_credentials_then_health_is_open_and_classify_needs_the_key(
    tmp_path, artifact_cache, cat_jpeg
):
    env = environment(tmp_path, artifact_cache, tmp_path / "guarded")
    line, seconds = refusal(env, "--host", "0.0.0.0")
    for fix in ("recognizer keys create", "recognizer users add", "--allow-anonymous"):
        assert fix in line, line
    print(f"refused in {seconds:.1f} s: {line}")

    token = create_key(env, "classify")
    with serving(tmp_path, artifact_cache, "guarded", "--host", "0.0.0.0") as server:
        assert server.get("/readyz").status_code == 200 and server.get("/healthz").status_code == 200
        anonymous = classify(server, cat_jpeg)
        assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert classify(server, cat_jpeg, {"X-API-Key": token[:-2] + "xx"}).status_code == 401
        answer = classify(server, cat_jpeg, bearer(token))
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] in CATS
        assert classify(server, cat_jpeg, {"X-API-Key": token}).status_code == 200


def _serve_anonymously(tmp_path, artifact_cache, cat_jpeg, *args: str, env: dict[str, str] | None = None):
    with serving(tmp_path, artifact_cache, "open", "--host", "0.0.0.0", *args, env=env) as server:
        answer = classify(server, cat_jpeg)  # no credentials at all
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["label"] in CATS
        assert server.get("/v1/session").json()["login_required"] is False


def test_allow_anonymous_starts_an_open_server_from_the_environment(tmp_path, artifact_cache, cat_jpeg):
    _serve_anonymously(tmp_path, artifact_cache, cat_jpeg, env={"RECOGNIZER_ALLOW_ANONYMOUS": "1"})


def test_allow_anonymous_flag_starts_an_open_server(tmp_path, artifact_cache, cat_jpeg):
    _serve_anonymously(tmp_path, artifact_cache, cat_jpeg, "--allow-anonymous")


@pytest.mark.parametrize(
    ("variable", "workers"),
    [
        pytest.param(
            "RECOGNIZER_RATE_LIMITS",
            "1",
        ),
        pytest.param(
            "RECOGNIZER_RATE_LIMITS",
            "2",
        ),
        pytest.param(
            "RECOGNIZER_LOGIN_RATE_LIMIT",
            "1",
        ),
    ],
)
def test_a_malformed_rate_limit_setting_is_refused_in_one_line(tmp_path, artifact_cache, variable, workers):
    value = "classify=lots" if variable == "RECOGNIZER_RATE_LIMITS" else "lots"
    env = environment(tmp_path, artifact_cache, tmp_path / "data", {variable: value})
    line, seconds = refusal(env, "--workers", workers)
    assert "lots" in line
    print(f"{variable}={value}, {workers} worker(s): refused in {seconds:.1f} s: {line}")


# -- b. two workers, one limit ---------------------------------------------------------------------

LIMIT = 30
LIMITED = {"RECOGNIZER_RATE_LIMITS": f"classify={LIMIT}/minute"}


def _limited_load(
    tmp_path, artifact_cache, name: str, env: dict[str, str], redis: Redis | None = None
) -> tuple[Counter[int], str]:
    environ = environment(tmp_path, artifact_cache, tmp_path / name)
    token = create_key(environ, "classify")
    if redis is not None:
        redis.own(token)
    with serving(tmp_path, artifact_cache, name, workers=2, env=LIMITED | env) as server:
        started = time.monotonic()
        answers = hammer(server, "/v1/models", bearer(token), total=2 * LIMIT)
        seconds = time.monotonic() - started
        assert seconds < 50, "the whole load must fit in the limit's one-minute window"
    statuses = assert_no_server_error(answers, {200, 429})
    for answer in answers:
        if answer.status == 429:
            assert answer.code == "rate_limited" and 1 <= int(answer.retry_after) <= 60
    print(f"{name}: {dict(statuses)} in {seconds:.1f} s")
    return statuses, token


def test_two_workers_sharing_redis_allow_exactly_the_limit(tmp_path, artifact_cache, redis):
    statuses, token = _limited_load(
        tmp_path, artifact_cache, "redis", {"RECOGNIZER_REDIS_URL": redis.url}, redis
    )
    assert statuses == {200: LIMIT, 429: LIMIT}
    assert redis.counters(token.split("_")[1]), "the counters live in Redis"


def test_two_workers_counting_alone_let_more_through(tmp_path, artifact_cache):
    """Why RECOGNIZER_REDIS_URL exists: in memory, each worker has its own 30 per minute."""
    statuses, _ = _limited_load(tmp_path, artifact_cache, "memory", {})
    assert statuses[200] > LIMIT and statuses[200] + statuses[429] == 2 * LIMIT


# -- c. Redis stopped mid-test ---------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["open", "closed"])
def test_redis_stopped_mid_test(tmp_path, artifact_cache, redis, cat_jpeg, failure):
    env = {
        "RECOGNIZER_REDIS_URL": redis.url,
        "RECOGNIZER_RATE_LIMITS": "classify=1000/minute",
        "RECOGNIZER_RATE_LIMIT_FAILURE": failure,
    }
    name = f"redis-{failure}"
    environ = environment(tmp_path, artifact_cache, tmp_path / name)
    token = create_key(environ, "classify")
    redis.own(token)
    cli(environ, "users", "add", "ada", "--password-stdin", stdin="ada-password\n")
    with serving(tmp_path, artifact_cache, name, env=env) as server:
        before = server.get("/v1/models", headers=bearer(token))
        assert before.status_code == 200 and before.headers["RateLimit-Limit"] == "1000"

        with redis.stopped():
            answers = hammer(server, "/v1/models", bearer(token), total=20, threads=4)
            photo = classify(server, cat_jpeg, bearer(token))
            login = server.post("/v1/session", json={"username": "ada", "password": "wrong"})
            health = [server.get(path).status_code for path in ("/healthz", "/readyz", "/v2/health/live")]
            no_key = server.get("/v1/models")
        slowest = max(answer.seconds for answer in answers)

        assert health == [200, 200, 200]
        assert no_key.status_code == 401  # credentials are checked before the limiter is asked
        if failure == "open":
            statuses = assert_no_server_error(answers, {200})
            assert photo.status_code == 200 and photo.json()["predictions"][0]["label"] in CATS
            assert "RateLimit-Limit" not in photo.headers  # let through, not counted
            assert login.status_code == 401  # the password was checked
            metrics = server.get("/metrics").text  # loopback: open
            assert re.search(r"^recognizer_rate_limiter_unavailable [1-9]", metrics, re.MULTILINE)
        else:
            statuses = assert_no_server_error(answers, {503})
            for refused in (photo, login):
                assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM
                assert refused.json()["code"] == "rate_limiter_unavailable"
                assert int(refused.headers["Retry-After"]) >= 1
            assert all(answer.code == "rate_limiter_unavailable" and answer.retry_after for answer in answers)
        print(f"Redis stopped, {failure}: /v1/models {dict(statuses)}, classify {photo.status_code}")
        print(f"  login {login.status_code}, health {health}, slowest answer {slowest * 1000:.0f} ms")
        assert slowest < 5

        # Redis back: limits apply again, without a restart
        deadline = time.monotonic() + 10
        while (after := server.get("/v1/models", headers=bearer(token))).status_code != 200:
            assert time.monotonic() < deadline, after.text
            time.sleep(0.2)
        assert after.headers["RateLimit-Limit"] == "1000"
        log = server.log.read_text()
    assert "rate limiter store unreachable" in log and f"failing {failure}" in log
    assert log.count("rate limiter store unreachable") <= 2  # one line per 10 s, not one per request


@contextmanager
def hung_redis() -> Iterator[str]:
    """A "Redis" that accepts connections and never answers (an overloaded or half-dead server,
    a dropped route): every limiter call meets the 0.5-s socket timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with suppress(OSError):  # the listener closed
            while True:
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_hung_redis_does_not_stall_health_checks(tmp_path, artifact_cache):
    environ = environment(tmp_path, artifact_cache, tmp_path / "hung")
    token = create_key(environ, "classify")
    with hung_redis() as url:
        env = {"RECOGNIZER_REDIS_URL": url, "RECOGNIZER_RATE_LIMITS": "classify=1000/minute"}
        with serving(tmp_path, artifact_cache, "hung", env=env) as server:
            answers: list[Answer] = []
            load = threading.Thread(
                target=lambda: answers.extend(hammer(server, "/v1/models", bearer(token), total=8, threads=4))
            )
            load.start()
            time.sleep(0.3)  # the four first limiter calls are waiting for "Redis" now
            started = time.monotonic()
            health = server.get("/healthz")
            seconds = time.monotonic() - started
            load.join(60)
    statuses = assert_no_server_error(answers, {200})  # fail open: let through, slowly
    slowest = max(answer.seconds for answer in answers)
    print(f"hung Redis: /v1/models {dict(statuses)}, slowest {slowest:.2f} s; /healthz took {seconds:.2f} s")
    assert health.status_code == 200 and seconds < 0.25


# -- d. schemathesis against an auth-on server -----------------------------------------------------


def _schemathesis(server: Server, tmp_path: Path, checks: str, *extra: str) -> subprocess.CompletedProcess:
    return run_schemathesis(server.url, tmp_path, checks, *extra)


def _summary(done: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in done.stdout.splitlines()]
    return next((line for line in reversed(lines) if "generated" in line), lines[-1] if lines else "")


@pytest.fixture(scope="module")
def auth_on(tmp_path_factory, artifact_cache) -> Iterator[tuple[Server, str]]:
    tmp_path = tmp_path_factory.mktemp("auth-on")
    environ = environment(tmp_path, artifact_cache, tmp_path / "server")
    token = create_key(environ, ALL_SCOPES)
    with serving(tmp_path, artifact_cache, "server", env={"RECOGNIZER_AUTH": "on"}) as server:
        yield server, token


def _public_operations() -> set[tuple[str, str]]:
    """(method, path) of the routes declared ``public``, from the app's own route table."""
    import tempfile

    from recognizer.api import create_app
    from recognizer.api.guard import Requirement
    from recognizer.api.route_table import endpoints
    from recognizer.config import Settings

    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings(auth="on", data_dir=data, history="off"))
    public = set()
    for route in endpoints(app):
        [need] = [d.call for d in route.dependant.dependencies if isinstance(d.call, Requirement)]
        if need.scope is None or (need.scope == "metrics" and app.state.access.metrics_open):
            public |= {(method, route.path) for method in route.methods}
    return public


def test_schemathesis_without_a_key_finds_no_server_error_and_only_public_routes_answer(auth_on, tmp_path):
    server, _ = auth_on
    operations = [
        (method.upper(), path)
        for path, item in server.get("/openapi.json").json()["paths"].items()
        for method in item
    ]
    public, wrong = _public_operations(), []
    fill = {"name": "efficientnet_lite0", "id": "0123abcd", "version": "1"}
    for method, path in operations:
        status = httpx.request(method, f"{server.url}{path.format(**fill)}", timeout=30).status_code
        if ((method, path) in public) == (status == 401) or status >= 500:
            wrong.append(f"{method} {path} -> {status}")
    assert not wrong, "\n".join(wrong)
    print(f"without a key: {len(operations) - len(public & set(operations))} operations answer 401")

    # 401 is not in the protected operations' documented responses: only server errors count here
    done = _schemathesis(server, tmp_path, "not_a_server_error")
    print(f"schemathesis without a key: {_summary(done)}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Server error" not in done.stdout


def test_schemathesis_with_a_key_finds_no_server_error(auth_on, tmp_path):
    server, token = auth_on
    done = _schemathesis(server, tmp_path, "not_a_server_error", "-H", f"Authorization: Bearer {token}")
    print(f"schemathesis with a key, no server error: {_summary(done)}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_schemathesis_with_a_key_finds_no_failure_with_all_checks(auth_on, tmp_path):
    server, token = auth_on
    done = _schemathesis(server, tmp_path, "all", "-H", f"Authorization: Bearer {token}")
    print(f"schemathesis with a key, all checks: {_summary(done)}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "unique failure" not in done.stdout


def test_login_with_an_undecodable_body_answers_a_documented_status(auth_on):
    server, _ = auth_on
    documented = server.get("/openapi.json").json()["paths"]["/v1/session"]["post"]["responses"]
    answer = server.post(
        "/v1/session", content=b"\xff\x1d,\xfe", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code < 500 and answer.headers["content-type"] == PROBLEM
    assert str(answer.status_code) in documented, f"{answer.status_code} not in {sorted(documented)}"


# -- e. TLS ----------------------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A one-day certificate for 127.0.0.1: with `cryptography` where importable, else openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
    except ImportError:
        if not shutil.which("openssl"):
            pytest.skip("neither the cryptography package nor openssl can make a test certificate")
        command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run([*command, "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
        return cert, key
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


def _tls_checks(tmp_path, artifact_cache, how: str) -> None:
    cert, key = _self_signed(tmp_path)
    name = f"tls-{how}"
    environ = environment(tmp_path, artifact_cache, tmp_path / name)
    cli(environ, "users", "add", "ada", "--role", "viewer", "--password-stdin", stdin="ada-password\n")
    if how == "flags":
        args, env = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key)), {}
    else:
        args, env = (), {"RECOGNIZER_SSL_CERTFILE": str(cert), "RECOGNIZER_SSL_KEYFILE": str(key)}
    with serving(tmp_path, artifact_cache, name, *args, env=env, https=True) as server:
        health = server.get("/healthz")
        assert health.status_code == 200
        assert health.headers["Strict-Transport-Security"].startswith("max-age=")
        refused = server.get("/v1/models")
        assert refused.status_code == 401 and "Strict-Transport-Security" in refused.headers
        with httpx.Client(base_url=server.url, verify=False, timeout=30) as browser:
            login = browser.post("/v1/session", json={"username": "ada", "password": "ada-password"})
            assert login.status_code == 200, login.text
            cookie = login.headers["set-cookie"]
            attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
            assert cookie.startswith("recognizer_session=")
            assert {"secure", "httponly", "samesite"} <= attributes, cookie
            assert "samesite=strict" in cookie.lower()
            assert browser.get("/v1/session").json()["user"] == "ada"
            assert browser.get("/v1/models").status_code == 200  # the cookie works over HTTPS
    print(
        f"TLS ({how}): HSTS {health.headers['Strict-Transport-Security']!r}; cookie {cookie.split(';', 1)[1]}"
    )


def test_tls_from_the_environment_sends_hsts_and_a_secure_cookie(tmp_path, artifact_cache):
    _tls_checks(tmp_path, artifact_cache, "environment")


def test_tls_flags_send_hsts_and_a_secure_cookie(tmp_path, artifact_cache):
    _tls_checks(tmp_path, artifact_cache, "flags")

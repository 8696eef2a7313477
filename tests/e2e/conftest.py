"""A real `recognizer serve` process on a free loopback port, and Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("RECOGNIZER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        message = f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (CI installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@contextmanager
def started_server(
    root: Path,
    env: dict[str, str],
    *args: str,
    program: Path | None = None,
    log_name: str = "server.log",
    ready_s: float = 180.0,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``recognizer serve`` (``program``, default this venv's) on a free loopback port with ``env``
    (on top of os.environ) and extra ``args``, logging to ``root/log_name``; its URL and process once
    /readyz answers 200; stopped after, unless the test already stopped or killed it."""
    port = _free_port()
    log = root / log_name
    script = program or Path(sys.executable).with_name("recognizer")
    with log.open("w") as sink:
        process = subprocess.Popen(
            [script, "serve", "--port", str(port), *args], env=os.environ | env, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log, ready_s)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def running_server(root: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """:func:`started_server` for tests that only need its URL."""
    with started_server(root, env, *args) as (url, _):
        yield url


def server_env(torch_home: Path, artifact_cache: Path, **extra: str) -> dict[str, str]:
    """The variables every test server gets: isolated caches, two threads."""
    return {
        "TORCH_HOME": str(torch_home),
        "RECOGNIZER_CACHE_DIR": str(artifact_cache),
        "RECOGNIZER_THREADS": "2",
        **extra,
    }


@pytest.fixture(scope="session")
def server(tmp_path_factory, artifact_cache) -> Iterator[str]:
    env = server_env(tmp_path_factory.mktemp("torch-home"), artifact_cache)
    with running_server(tmp_path_factory.mktemp("server"), env) as url:
        yield url


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server not ready in {timeout}s:\n{log.read_text()}")

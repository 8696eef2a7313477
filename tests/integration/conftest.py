"""An app per module, on the real bundled model, with isolated caches."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from recognizer.api import create_app
from recognizer.config import Settings


def wait_ready(client: TestClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while (response := client.get("/readyz")).status_code != 200:
        if time.monotonic() > deadline or "failed" in response.json()["detail"]:
            raise TimeoutError(f"service not ready: {response.json()['detail']}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def api_settings(tmp_path_factory, artifact_cache) -> Settings:
    return Settings(
        torch_home=tmp_path_factory.mktemp("torch-home"), cache_dir=artifact_cache, threads=2, max_wait_ms=20
    )


@pytest.fixture(scope="module")
def client(api_settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as test_client:
        wait_ready(test_client)
        yield test_client

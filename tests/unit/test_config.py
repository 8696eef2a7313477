"""Settings: flat environment names, sections in code, flags over environment over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recognizer.config import SECTIONS, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("RECOGNIZER_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_documented_ones():
    s = Settings()
    assert (s.top_k, s.groups, s.labels, s.engine.name, s.engine.device) == (5, "off", None, "auto", "auto")
    assert (s.batching.max_batch, s.batching.max_wait_ms) == (16, 5.0)
    assert (s.server.host, s.server.port, s.server.workers) == ("127.0.0.1", 8000, 1)
    assert s.limits.max_image_bytes == 20 * 1024 * 1024


def test_flat_environment_names_reach_their_sections(monkeypatch):
    for key, value in {
        "ENGINE": "torch",
        "THREADS": "1",
        "MAX_BATCH": "4",
        "MAX_WAIT_MS": "2",
        "PORT": "9000",
        "MAX_IMAGE_PIXELS": "1000",
        "TOP_K": "2",
        "GROUPS": "builtin",
    }.items():
        monkeypatch.setenv(f"RECOGNIZER_{key}", value)
    s = Settings()
    assert (s.engine.name, s.engine.threads, s.batching.max_batch, s.batching.max_wait_ms) == (
        "torch",
        1,
        4,
        2,
    )
    assert (s.server.port, s.limits.max_image_pixels, s.top_k, s.groups) == (9000, 1000, 2, "builtin")


def test_flags_override_the_environment_and_keep_the_rest_of_a_section(monkeypatch):
    monkeypatch.setenv("RECOGNIZER_MAX_BATCH", "4")
    monkeypatch.setenv("RECOGNIZER_MAX_WAIT_MS", "9")
    s = Settings(max_batch=8)
    assert (s.batching.max_batch, s.batching.max_wait_ms) == (8, 9)
    assert s.with_flags(model="resnet18").batching.max_batch == 8


def test_one_name_per_idea():
    names = [name for section in SECTIONS.values() for name in section.model_fields]
    names += list(Settings.model_fields)
    assert len(names) == len(set(names)) and "batch_size" not in names


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"max_batch": 0}, "max_batch"),
        ({"engine": "tensorrt"}, "name"),
        ({"port": -1}, "port"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(flags, field):
    with pytest.raises(ValidationError) as caught:
        Settings(**flags)
    assert caught.value.errors()[0]["loc"][-1] == field


def test_threads_are_split_between_workers(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert (
        Settings(workers=2).effective_threads == 4 and Settings(threads=3, workers=2).effective_threads == 3
    )


def test_only_prefixed_variables_count(monkeypatch):
    monkeypatch.setenv("ENGINE", "bogus")  # a bare name another program may set
    assert Settings().engine.name == "auto"


def test_a_changed_copy_keeps_the_rest_of_each_section():
    copy = Settings(device="cpu", threads=3, max_wait_ms=9).with_flags(engine="torch", model="resnet18")
    assert (copy.engine.name, copy.engine.device, copy.engine.threads) == ("torch", "cpu", 3)
    assert (copy.model, copy.batching.max_wait_ms) == ("resnet18", 9)


def test_job_roots_are_absolute_folders_split_on_colons_or_commas(monkeypatch, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("RECOGNIZER_JOB_ROOTS", f"{tmp_path / 'link'}:/srv/a, /srv/b")
    monkeypatch.setenv("RECOGNIZER_JOB_MAX_QUEUED", "3")
    jobs = Settings().jobs
    assert jobs.root_paths == (tmp_path / "real", Path("/srv/a"), Path("/srv/b"))  # symlinks resolved
    assert (jobs.max_queued, jobs.max_inputs, jobs.max_upload_bytes) == (3, 100_000, 2 * 1024**3)
    assert Settings(job_roots="").jobs.root_paths == ()
    with pytest.raises(ValidationError, match="must be absolute"):
        Settings(job_roots="photos")

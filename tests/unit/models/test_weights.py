"""Weights lookup order, hash refusal, import and fetch: all offline."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil

import pytest

from recognizer.errors import WeightsIntegrityError, WeightsNotFoundError
from recognizer.models import get_model_spec
from recognizer.models import weights as store

LITE0 = get_model_spec("efficientnet_lite0")
RESNET18 = get_model_spec("resnet18")


@pytest.fixture
def checkpoints(tmp_path):
    return tmp_path / "hub" / "checkpoints"


def fake_published(spec, content: bytes):
    """A copy of ``spec`` whose published hash is that of ``content`` (we have no real resnet18 file)."""
    digest = hashlib.sha256(content).hexdigest()
    name = f"{spec.name}-{digest[:8]}.pth"
    weights = dataclasses.replace(spec.weights, file_name=name, sha256=digest[:8])
    return dataclasses.replace(spec, weights=weights)


def test_bundled_weights_are_found_and_fully_verified(checkpoints):
    resolved = store.resolve_weights(LITE0, checkpoints)
    assert resolved.origin == "bundled" and resolved.verified
    assert resolved.sha256 == LITE0.weights.sha256


def test_missing_weights_say_how_to_get_them(checkpoints):
    with pytest.raises(WeightsNotFoundError) as err:
        store.resolve_weights(RESNET18, checkpoints)
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and "recognizer weights fetch resnet18" in message


def test_hub_cache_wins_over_bundled_and_is_verified(checkpoints):
    checkpoints.mkdir(parents=True)
    shutil.copy(store.bundled_path(LITE0), checkpoints / LITE0.weights.file_name)
    assert store.resolve_weights(LITE0, checkpoints).origin == "hub-cache"


def test_corrupted_cache_file_is_refused_by_name(checkpoints):
    checkpoints.mkdir(parents=True)
    (checkpoints / RESNET18.weights.file_name).write_bytes(b"not the real weights")
    with pytest.raises(WeightsIntegrityError, match=re.escape("resnet18-f37072fd.pth")):
        store.resolve_weights(RESNET18, checkpoints)


def test_truncated_bundled_copy_is_refused(checkpoints, tmp_path):
    truncated = tmp_path / LITE0.weights.file_name
    truncated.write_bytes(store.bundled_path(LITE0).read_bytes()[:100_000])
    with pytest.raises(WeightsIntegrityError, match="truncated"):
        store.resolve_weights(LITE0, checkpoints, explicit=truncated)


def test_explicit_custom_file_is_accepted_unverified(checkpoints, tmp_path):
    custom = tmp_path / "finetuned.pth"
    custom.write_bytes(b"weights")
    resolved = store.resolve_weights(RESNET18, checkpoints, explicit=custom)
    assert resolved.origin == "file" and not resolved.verified
    assert "custom" in resolved.describe()


def test_hash_in_file_name_is_checked(checkpoints, tmp_path):
    lying = tmp_path / "resnet18-deadbeef.pth"
    lying.write_bytes(b"weights")
    with pytest.raises(WeightsIntegrityError, match=re.escape("resnet18-deadbeef.pth")):
        store.resolve_weights(RESNET18, checkpoints, explicit=lying)


def test_pinned_hash_is_enforced(checkpoints, tmp_path):
    custom = tmp_path / "finetuned.pth"
    custom.write_bytes(b"weights")
    with pytest.raises(WeightsIntegrityError):
        store.resolve_weights(RESNET18, checkpoints, explicit=custom, pinned_sha256="0" * 64)
    digest = hashlib.sha256(b"weights").hexdigest()
    assert store.resolve_weights(RESNET18, checkpoints, explicit=custom, pinned_sha256=digest).verified


def test_empty_file_is_refused(checkpoints, tmp_path):
    empty = tmp_path / "empty.pth"
    empty.touch()
    with pytest.raises(WeightsIntegrityError, match="empty"):
        store.resolve_weights(RESNET18, checkpoints, explicit=empty)


def test_import_verifies_then_lands_in_the_hub_cache(checkpoints, tmp_path):
    content = b"pretend these are published weights"
    spec = fake_published(RESNET18, content)
    source = tmp_path / "download.bin"
    source.write_bytes(content)
    imported = store.import_weights(spec, source, checkpoints)
    assert imported.path == checkpoints / spec.weights.file_name
    assert store.resolve_weights(spec, checkpoints).origin == "hub-cache"


def test_import_refuses_the_wrong_file(checkpoints, tmp_path):
    wrong = tmp_path / "other.pth"
    wrong.write_bytes(b"something else")
    with pytest.raises(WeightsIntegrityError):
        store.import_weights(RESNET18, wrong, checkpoints)
    assert not (checkpoints / RESNET18.weights.file_name).exists()


def test_fetch_uses_torchvisions_loader_and_checks_the_hash(checkpoints, resnet18_random_weights):
    # A file:// URL exercises the real download code without a network.
    spec = fake_published(RESNET18, resnet18_random_weights.read_bytes())
    spec = dataclasses.replace(
        spec, weights=dataclasses.replace(spec.weights, url=resnet18_random_weights.as_uri())
    )
    fetched = store.fetch_weights(spec, checkpoints)
    assert fetched.origin == "download" and fetched.verified
    assert fetched.path == checkpoints / spec.weights.file_name


def test_fetch_refuses_a_download_with_the_wrong_hash(checkpoints, resnet18_random_weights):
    weights = dataclasses.replace(RESNET18.weights, url=resnet18_random_weights.as_uri())
    with pytest.raises(WeightsIntegrityError):
        store.fetch_weights(dataclasses.replace(RESNET18, weights=weights), checkpoints)
    assert not (checkpoints / RESNET18.weights.file_name).exists()


def test_fetch_offline_explains_the_import_route(checkpoints):
    weights = dataclasses.replace(RESNET18.weights, url="http://127.0.0.1:9/resnet18-f37072fd.pth")
    with pytest.raises(WeightsNotFoundError, match="recognizer weights import resnet18"):
        store.fetch_weights(dataclasses.replace(RESNET18, weights=weights), checkpoints)

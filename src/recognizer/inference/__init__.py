"""Build a ready Predictor from Settings: choose the model, resolve weights, load the engine."""

from __future__ import annotations

from dataclasses import dataclass

from recognizer.config import Settings
from recognizer.engines import load_engine
from recognizer.imaging import DecodeLimits, configure_pillow
from recognizer.inference.postprocess import Prediction
from recognizer.inference.predictor import Predictor, Recognition
from recognizer.models import ModelSpec, get_model_spec
from recognizer.models.weights import available_offline, resolve_weights

__all__ = ["ModelChoice", "Prediction", "Predictor", "Recognition", "build_predictor", "choose_model"]

FLAGSHIP = "resnet18"
OFFLINE_FALLBACK = "efficientnet_lite0"


@dataclass(frozen=True)
class ModelChoice:
    spec: ModelSpec
    #: why this model was used when the user did not name one (None when they did)
    reason: str | None = None


def choose_model(settings: Settings) -> ModelChoice:
    """The named model, else resnet18 when its weights are local, else the bundled EfficientNet-Lite0."""
    if settings.model:
        return ModelChoice(get_model_spec(settings.model))
    flagship = get_model_spec(FLAGSHIP)
    if settings.weights is not None or available_offline(flagship, settings.hub_checkpoints):
        return ModelChoice(flagship, "default model")
    return ModelChoice(
        get_model_spec(OFFLINE_FALLBACK),
        f"{FLAGSHIP} weights not found ({settings.hub_checkpoints / flagship.weights.file_name}); "
        f"using the bundled {OFFLINE_FALLBACK}. Get them with `recognizer weights fetch {FLAGSHIP}`",
    )


def build_predictor(settings: Settings, choice: ModelChoice | None = None) -> Predictor:
    spec = (choice or choose_model(settings)).spec
    weights = resolve_weights(
        spec,
        settings.hub_checkpoints,
        explicit=settings.weights,
        pinned_sha256=settings.weights_sha256,
        allow_download=settings.allow_download and settings.model is not None,
    )
    engine = load_engine(
        settings.engine, spec, weights, settings.cache_dir, settings.effective_threads, settings.device
    )
    limits = DecodeLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    configure_pillow(limits)
    return Predictor(
        spec,
        engine,
        weights,
        limits=limits,
        jpeg_draft=settings.jpeg_draft,
        batch_size=settings.batch_size,
        decode_threads=settings.effective_threads,
    )

"""The model registry: look models up by name; nothing here imports torch."""

from __future__ import annotations

from recognizer.errors import UnknownModelError
from recognizer.models.spec import ModelSpec, Preprocessing, WeightsSpec
from recognizer.models.zoo import MODELS

__all__ = ["ModelSpec", "Preprocessing", "WeightsSpec", "get_model_spec", "list_model_specs", "model_names"]

_BY_NAME: dict[str, ModelSpec] = {spec.name: spec for spec in MODELS}
if len(_BY_NAME) != len(MODELS):
    raise RuntimeError("a model name is registered twice in recognizer.models.zoo")


def model_names() -> list[str]:
    return [spec.name for spec in MODELS]


def list_model_specs() -> tuple[ModelSpec, ...]:
    return MODELS


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(model_names())} (see `recognizer models`)"
        ) from None

"""The inference layer: assembly (``loading``), the pipeline, its results and hooks.

Every entry point (CLI, HTTP API, later folder jobs and streams) drives :class:`Pipeline`; side
effects attach as :class:`Hook` objects.
"""

from __future__ import annotations

from recognizer.inference.hooks import Hook, Hooks
from recognizer.inference.loading import LoadedModel, ModelChoice, choose_model, load_engine, load_model
from recognizer.inference.pipeline import Options, Pipeline
from recognizer.inference.results import GroupScore, Prediction, Recognition

__all__ = [
    "GroupScore",
    "Hook",
    "Hooks",
    "LoadedModel",
    "ModelChoice",
    "Options",
    "Pipeline",
    "Prediction",
    "Recognition",
    "choose_model",
    "load_engine",
    "load_model",
]

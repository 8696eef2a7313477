"""Inference backends: one module per backend, the interface in ``base``, the kinds in ``kinds``.

Backends only: choosing an engine for a model and building it is the inference layer's job
(``recognizer.inference.loading``). Backend modules are imported lazily, so a missing optional
package only matters when that engine is asked for, and then fails with the exact install command.
"""

from __future__ import annotations

from recognizer.engines.base import Engine, EngineInfo
from recognizer.engines.kinds import (
    ENGINE_KINDS,
    ENGINE_NAMES,
    EngineKind,
    available_engines,
    engine_kind,
    validate_engine,
)

__all__ = [
    "ENGINE_KINDS",
    "ENGINE_NAMES",
    "Engine",
    "EngineInfo",
    "EngineKind",
    "available_engines",
    "engine_kind",
    "validate_engine",
]

"""The one typed settings object.

Values come from, in rising priority: defaults, ``RECOGNIZER_*`` environment variables, and CLI
flags (the CLI passes them as keyword arguments). Settings are built once at start-up and passed
down; no module reads the environment on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recognizer.engines.devices import Device


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "recognizer"


def _default_torch_home() -> Path:
    # Mirrors torch.hub.get_dir() without importing torch: $TORCH_HOME, else $XDG_CACHE_HOME/torch.
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"


class Settings(BaseSettings):
    """Runtime configuration; every field is documented in README.md (section Configuration)."""

    model_config = SettingsConfigDict(env_prefix="RECOGNIZER_", extra="forbid", validate_default=True)

    model: str | None = Field(None, description="Model name; None picks resnet18 if its weights are local.")
    weights: Path | None = Field(None, description="Explicit weights file for the chosen model.")
    weights_sha256: str | None = Field(None, description="Expected SHA-256 (or prefix) of --weights.")
    engine: str = Field(
        "auto", description="Inference engine: auto or one of recognizer.engines.ENGINE_NAMES."
    )
    device: Device = Field(
        "auto", description="Where models run: auto takes a usable CUDA GPU, else the CPU."
    )
    top_k: int = Field(5, ge=1, le=1000)
    threads: int = Field(0, ge=0, description="Intra-op threads per engine; 0 = all cores.")
    batch_size: int = Field(8, ge=1, le=256, description="Images per engine call in batch jobs.")
    jpeg_draft: bool = Field(
        True, description="JPEG draft decoding + cropped resize; False = torchvision's exact pixels."
    )
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(50_000_000, ge=1)
    allow_download: bool = Field(True, description="Download missing weights of an explicitly named model.")
    host: str = Field("127.0.0.1", description="Address `recognizer serve` listens on.")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="Server processes; threads are split between them.")
    max_batch: int = Field(16, ge=1, le=256, description="Largest micro-batch the server forms.")
    access_log: bool = Field(True, description="uvicorn's per-request log line (metrics cover the rest).")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="How long a lone request waits for company.")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="ONNX and other artifacts.")
    torch_home: Path = Field(default_factory=_default_torch_home, description="Torch hub cache root.")

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from recognizer.engines import ENGINE_NAMES

        if value != "auto" and value not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {value!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}")
        return value

    @property
    def hub_checkpoints(self) -> Path:
        """Where torchvision's downloader puts weights: ``$TORCH_HOME/hub/checkpoints``."""
        return self.torch_home / "hub" / "checkpoints"

    @property
    def effective_threads(self) -> int:
        """Intra-op threads per engine: given, or the cores split between workers (never oversubscribed)."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

"""The one typed settings object, grouped in sections.

Values come from, in rising priority: defaults, ``RECOGNIZER_*`` environment variables, and CLI
flags (the CLI passes them as keyword arguments). Environment names stay flat
(``RECOGNIZER_MAX_BATCH``, not ``RECOGNIZER_BATCHING__MAX_BATCH``) because they are what users type;
the object groups them into sections (``settings.batching.max_batch``) because that is how the code
reads them. Flat keyword arguments (``Settings(max_batch=4)``) go to their section. Settings are
built once at start-up and passed down; no module reads the environment on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from recognizer.engines.devices import Device
from recognizer.engines.kinds import ENGINE_NAMES

_ENV = SettingsConfigDict(
    env_prefix="RECOGNIZER_", extra="forbid", validate_default=True, populate_by_name=True
)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "recognizer"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "recognizer"


def _default_torch_home() -> Path:
    # Mirrors torch.hub.get_dir() without importing torch: $TORCH_HOME, else $XDG_CACHE_HOME/torch.
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"


class EngineSettings(BaseSettings):
    """Which engine runs the models, where, with how many threads."""

    model_config = _ENV

    name: str = Field(
        "auto",
        validation_alias="RECOGNIZER_ENGINE",  # `name=` works too (populate_by_name); bare ENGINE does not
        description="Inference engine: auto or one of recognizer.engines.ENGINE_NAMES.",
    )
    device: Device = Field(
        "auto", description="Where models run: auto takes a usable CUDA GPU, else the CPU."
    )
    threads: int = Field(0, ge=0, description="Intra-op threads per engine; 0 = cores / workers.")

    @field_validator("name")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value != "auto" and value not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {value!r}; choose one of: auto, {', '.join(ENGINE_NAMES)}")
        return value


class BatchingSettings(BaseSettings):
    """How inputs are grouped into engine calls: by the server's micro-batcher and by batch commands."""

    model_config = _ENV

    max_batch: int = Field(16, ge=1, le=256, description="Largest engine batch.")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="How long a lone input waits for company.")


class LimitSettings(BaseSettings):
    """What untrusted input may cost before it is refused."""

    model_config = _ENV

    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(50_000_000, ge=1)


class ServerSettings(BaseSettings):
    """`recognizer serve`: where it listens and how many processes it runs."""

    model_config = _ENV

    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="Server processes; threads are split between them.")
    access_log: bool = Field(True, description="uvicorn's per-request log line (metrics cover the rest).")
    ssl_certfile: Path | None = Field(
        None, description="TLS certificate (PEM); serves HTTPS with ssl_keyfile."
    )
    ssl_keyfile: Path | None = Field(None, description="TLS private key (PEM).")


class HistorySettings(BaseSettings):
    """Recognition history: whether rows are kept, with which pixels, for how long, how durably."""

    model_config = _ENV

    mode: Literal["on", "off"] = Field(
        "on", validation_alias="RECOGNIZER_HISTORY", description="Record every recognition (off: none)."
    )
    images: Literal["none", "thumbnail", "full"] = Field(
        "none",
        validation_alias="RECOGNIZER_HISTORY_IMAGES",
        description="Pixels kept with a row: none (only the hash), a <=256-px JPEG, or the original bytes.",
    )
    days: float | None = Field(
        None, gt=0, validation_alias="RECOGNIZER_HISTORY_DAYS", description="Delete rows older than this."
    )
    max_rows: int | None = Field(
        None, ge=1, validation_alias="RECOGNIZER_HISTORY_MAX_ROWS", description="Keep at most this many rows."
    )
    durability: Literal["async", "sync"] = Field(
        "async",
        validation_alias="RECOGNIZER_HISTORY_DURABILITY",
        description="sync: answer only once the row is committed; async: batched, loses at most the last "
        "flush interval's rows if the process is killed.",
    )
    migrate: bool = Field(
        False, validation_alias="RECOGNIZER_MIGRATE", description="Migrate an older schema at start."
    )


class JobSettings(BaseSettings):
    """Folder jobs over HTTP (``POST /v1/jobs``): which server folders they may read, what an upload
    may cost, how many may wait."""

    model_config = _ENV

    roots: str = Field(
        "",
        validation_alias="RECOGNIZER_JOB_ROOTS",
        description="Absolute folders a job may read from the server's disk, separated by ':' or ','; "
        "none (the default): only uploaded zips.",
    )
    max_upload_bytes: int = Field(
        2 * 1024**3,
        ge=1,
        validation_alias="RECOGNIZER_JOB_MAX_UPLOAD_BYTES",
        description="Largest zip a job may upload (HTTP 413 above).",
    )
    max_inputs: int = Field(
        100_000,
        ge=1,
        validation_alias="RECOGNIZER_JOB_MAX_INPUTS",
        description="Most entries in an uploaded zip, or images in a folder, per job.",
    )
    max_queued: int = Field(
        16, ge=1, validation_alias="RECOGNIZER_JOB_MAX_QUEUED", description="Jobs waiting their turn at most."
    )

    @field_validator("roots")
    @classmethod
    def _absolute_roots(cls, value: str) -> str:
        relative = [part for part in _split_roots(value) if not Path(part).expanduser().is_absolute()]
        if relative:
            raise ValueError(f"job roots must be absolute folders, not {', '.join(relative)}")
        return value

    @property
    def root_paths(self) -> tuple[Path, ...]:
        """The roots as real paths (symlinks resolved), so that containment is checked on real paths."""
        return tuple(Path(os.path.realpath(Path(part).expanduser())) for part in _split_roots(self.roots))


def _split_roots(value: str) -> list[str]:
    return [part.strip() for part in value.replace(",", ":").split(":") if part.strip()]


class AuthSettings(BaseSettings):
    """Credentials, sessions, rate limits and browser-facing HTTP policy."""

    model_config = _ENV

    enforce: Literal["auto", "on", "off"] = Field(
        "auto",
        validation_alias="RECOGNIZER_AUTH",
        description="auto: credentials needed once any key or user exists, or off loopback; on; off.",
    )
    allow_anonymous: bool = Field(
        False, description="Serve a non-loopback address with no keys or users (accepting the risk)."
    )
    secret_key: str | None = Field(
        None, description="Signs session cookies; default: a random key kept in data_dir/secret.key."
    )
    redis_url: str | None = Field(None, description="Redis for rate limits shared by workers and hosts.")
    rate_limits: str = Field(
        "", description="Per key/user and scope, e.g. 'classify=600/minute; history:read=120/minute'."
    )
    rate_limit_failure: Literal["open", "closed"] = Field(
        "open", description="When Redis is unreachable: let requests through (open) or answer 503."
    )
    login_rate_limit: str = Field("10/minute", description="Login attempts per account and per address.")
    metrics: Literal["auto", "open", "key"] = Field(
        "auto", description="/metrics: open on loopback (auto), always open, or a key with 'metrics'."
    )
    cors_origins: str = Field("", description="Comma-separated origins allowed by CORS (default none).")


class StreamSettings(BaseSettings):
    """Video streams (``recognizer watch``, ``/v1/streams``): sampling, the watchdog, event sinks."""

    model_config = _ENV

    fps: float = Field(
        2.0, gt=0, le=60, validation_alias="RECOGNIZER_STREAM_FPS", description="Frames sampled per second."
    )
    read_timeout_s: float = Field(
        5.0,
        gt=0,
        le=5,
        validation_alias="RECOGNIZER_STREAM_READ_TIMEOUT_S",
        description="A live source silent this long is lost (the watchdog's own limit, not FFmpeg's).",
    )
    reconnect_max_s: float = Field(
        30.0,
        gt=0,
        validation_alias="RECOGNIZER_STREAM_RECONNECT_MAX_S",
        description="Longest wait between reconnection attempts (exponential backoff with jitter).",
    )
    max_streams: int = Field(
        16, ge=1, validation_alias="RECOGNIZER_MAX_STREAMS", description="Streams the server runs at most."
    )
    webhook_url: str | None = Field(
        None, validation_alias="RECOGNIZER_WEBHOOK_URL", description="Where the webhook sink POSTs events."
    )
    webhook_secret: str | None = Field(
        None,
        validation_alias="RECOGNIZER_WEBHOOK_SECRET",
        description="Signs each webhook body (HMAC-SHA256, header X-Recognizer-Signature).",
    )
    mqtt_url: str | None = Field(
        None,
        validation_alias="RECOGNIZER_MQTT_URL",
        description="Broker of the MQTT sink, e.g. mqtt://127.0.0.1:1883.",
    )
    mqtt_topic: str = Field(
        "recognizer", validation_alias="RECOGNIZER_MQTT_TOPIC", description="Prefix of the MQTT topics."
    )


#: section field -> its class; a flat keyword argument or CLI flag named like one of the class's
#: fields goes to that section
SECTIONS: dict[str, type[BaseSettings]] = {
    "engine": EngineSettings,
    "batching": BatchingSettings,
    "limits": LimitSettings,
    "server": ServerSettings,
    "history": HistorySettings,
    "auth": AuthSettings,
    "jobs": JobSettings,
    "streams": StreamSettings,
}
#: flat names that differ from the section's field name
_FLAT_ALIASES = {
    "engine": ("engine", "name"),
    "history": ("history", "mode"),
    "history_images": ("history", "images"),
    "history_days": ("history", "days"),
    "history_max_rows": ("history", "max_rows"),
    "history_durability": ("history", "durability"),
    "auth": ("auth", "enforce"),
    "job_roots": ("jobs", "roots"),
    "job_max_upload_bytes": ("jobs", "max_upload_bytes"),
    "job_max_inputs": ("jobs", "max_inputs"),
    "job_max_queued": ("jobs", "max_queued"),
    "stream_fps": ("streams", "fps"),
    "stream_read_timeout_s": ("streams", "read_timeout_s"),
    "stream_reconnect_max_s": ("streams", "reconnect_max_s"),
}


def _flat_keys(section: type[BaseSettings]) -> dict[str, str]:
    keys = {name: name for name in section.model_fields}
    for flat, (owner, field) in _FLAT_ALIASES.items():
        if SECTIONS[owner] is section:
            keys.pop(field, None)
            keys[flat] = field
    return keys


class _FlatEnvSource(EnvSettingsSource):
    """Top-level environment values, leaving sections to read their own (``RECOGNIZER_ENGINE`` is the
    engine's name, not a JSON document for the whole section)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in SECTIONS:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    """Runtime configuration; every setting is documented in README.md (section Configuration)."""

    model_config = _ENV

    model: str | None = Field(None, description="Model name; None picks resnet18 if its weights are local.")
    weights: Path | None = Field(None, description="Explicit weights file for the chosen model.")
    weights_sha256: str | None = Field(None, description="Expected SHA-256 (or prefix) of --weights.")
    top_k: int = Field(5, ge=1, le=1000, description="Labels per image, wherever a caller gives none.")
    labels: Path | None = Field(None, description="CSV/JSON file of custom display names for the classes.")
    groups: str = Field(
        "off", description="Label groups in every result: off, builtin, or a CSV/JSON groups file."
    )
    jpeg_draft: bool = Field(
        True, description="JPEG draft decoding + cropped resize; False = torchvision's exact pixels."
    )
    allow_download: bool = Field(True, description="Download missing weights of an explicitly named model.")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="ONNX and other artifacts.")
    torch_home: Path = Field(default_factory=_default_torch_home, description="Torch hub cache root.")
    data_dir: Path = Field(
        default_factory=_default_data_dir, description="History database, stored images and jobs' files."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the history database; default: SQLite in data_dir."
    )

    engine: EngineSettings = Field(default_factory=EngineSettings)
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    streams: StreamSettings = Field(default_factory=StreamSettings)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, **_: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _FlatEnvSource(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _route_flat_keys(cls, data: Any) -> Any:
        """``Settings(threads=2)`` -> ``engine=EngineSettings(threads=2)``, the rest from the environment."""
        if not isinstance(data, dict):
            return data
        for section, section_cls in SECTIONS.items():
            given = {
                field: data.pop(flat)
                for flat, field in _flat_keys(section_cls).items()
                if flat in data and not (flat == section and isinstance(data[flat], dict | BaseSettings))
            }
            if given:
                existing = data.get(section)
                base = existing.model_dump() if isinstance(existing, BaseSettings) else dict(existing or {})
                data[section] = section_cls(**(base | given))
        return data

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: str) -> str:
        return value.strip() or "off"

    @property
    def history_database(self) -> str:
        """The history database's URL: the one given, else a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir.expanduser() / 'recognizer.db'}"

    @property
    def history_database_display(self) -> str:
        """The history database's URL with any password hidden, for logs and messages."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.history_database).render_as_string(hide_password=True)
        except Exception:
            return "(an unreadable RECOGNIZER_DATABASE_URL)"

    @property
    def hub_checkpoints(self) -> Path:
        """Where torchvision's downloader puts weights: ``$TORCH_HOME/hub/checkpoints``."""
        return self.torch_home / "hub" / "checkpoints"

    @property
    def effective_threads(self) -> int:
        """Intra-op threads per engine: given, or the cores split between workers (never oversubscribed)."""
        return self.engine.threads or max(1, (os.cpu_count() or 1) // self.server.workers)

    def with_flags(self, **flags: Any) -> Settings:
        """A copy with some settings changed, flat names allowed (``with_flags(model="resnet18")``);
        every other setting, in sections too, stays as it is here."""
        data = self.model_dump()
        for key, value in flags.items():
            section = next((name for name, cls in SECTIONS.items() if key in _flat_keys(cls)), None)
            if section is None:
                data[key] = value
            else:
                data[section][_flat_keys(SECTIONS[section])[key]] = value
        return Settings(**data)

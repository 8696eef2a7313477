"""What every entry point gets back for one input: a :class:`Recognition`.

One type for the CLI, the HTTP API and everything that attaches to the pipeline (history, alerts,
metrics), so they all see the same facts about an input: where it came from, what it was (hash,
size), who answered (model, engine, device), what they said, and how long it took.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np

from recognizer.errors import RecognizerError
from recognizer.models.vocabulary import GroupScore

__all__ = ["GroupScore", "Prediction", "Recognition", "new_id"]


def new_id() -> str:
    """A unique id that sorts by time: milliseconds since the epoch, then 64 random bits (hex).

    Made where the recognition happens, so a history row written twice (a retried commit whose
    answer was lost, a spool replayed after a crash) is recognised as the same row.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Prediction:
    index: int
    wnid: str
    label: str
    score: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Recognition:
    """One input's outcome; ``error`` is set instead of ``predictions`` when it was rejected."""

    #: the channel it came through: "api", "batch", "compat", "cli", later "job:ID", "stream:NAME"
    source: str
    #: the file or upload name the caller gave (never used as a path on the server)
    name: str
    model: str
    engine: str
    device: str = "cpu"
    predictions: list[Prediction] = field(default_factory=list)
    #: label groups, best first; None when groups were not asked for
    groups: list[GroupScore] | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int = 0
    timing_ms: dict[str, float] = field(default_factory=dict)
    error: RecognizerError | None = None
    #: the model's raw output, only when the caller asked for it (Options.keep_logits)
    logits: np.ndarray | None = field(default=None, repr=False)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: who asked: an API key's id once keys exist, else the client's address; None on the CLI
    client: str | None = None
    id: str = field(default_factory=new_id)
    #: the input's bytes, only while a hook needs them (history keeping thumbnails or originals)
    data: bytes | None = field(default=None, repr=False)
    #: hooks that must finish before the caller answers (history with sync durability) put a
    #: future here; the pipeline waits for them
    receipts: list[Future[None]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, object]:
        """The CLI's ``--json`` line (and the shape other writers start from)."""
        body: dict[str, object] = {"file": self.name, "model": self.model, "engine": self.engine}
        if self.error is not None:
            return body | {"error": {"type": self.error.code, "detail": str(self.error)}}
        body["predictions"] = [p.as_dict() for p in self.predictions]
        if self.groups is not None:
            body["groups"] = [g.as_dict() for g in self.groups]
        return body | {
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "timing_ms": self.timing_ms,
        }

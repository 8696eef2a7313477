"""The scopes a key or a role grants, and what each route needs."""

from __future__ import annotations

from collections.abc import Iterable

from recognizer.errors import ConfigError

#: every scope, with what it allows
SCOPES: dict[str, str] = {
    "classify": "classify images: /v1/classify[/batch], /predict, v2 infer",
    "jobs": "folder jobs",
    "streams": "camera and video streams",
    "history:read": "read and export recognition history",
    "history:delete": "delete recognition history",
    "metrics": "read /metrics (when it is not open)",
    "admin": "keys, users and settings",
}
#: what each web-page role may do
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"classify", "history:read"}),
    "operator": frozenset({"classify", "jobs", "streams", "history:read", "history:delete", "metrics"}),
    "admin": frozenset(SCOPES),
}
#: what an anonymous caller gets where the server runs open (loopback, or --allow-anonymous)
ANONYMOUS_SCOPES = frozenset(SCOPES)


def parse_scopes(text: str | Iterable[str]) -> frozenset[str]:
    """``"classify,history:read"`` (commas or spaces) -> the set, refusing unknown names."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise ConfigError(f"unknown scope(s) {', '.join(unknown)}; choose from: {', '.join(SCOPES)}")
    if not items:
        raise ConfigError(f"give at least one scope: {', '.join(SCOPES)}")
    return frozenset(items)

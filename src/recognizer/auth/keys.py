"""API keys: ``rk_<key id>_<secret>``, shown once; only a SHA-256 of the whole key is stored.

The secret is 256 random bits, so a fast hash is enough (a slow password hash protects guessable
secrets, which these are not); lookup is by the public key id and the comparison is constant
time. Revocation, expiry and rotation are read from the database, cached for at most
``CACHE_S`` seconds per process, so they take effect in every worker without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from recognizer.auth.principal import Principal
from recognizer.auth.scopes import parse_scopes
from recognizer.errors import ConfigError, NotFoundError
from recognizer.storage.tables import api_keys as t

PREFIX = "rk"
#: how long a worker trusts what it read about a key (revocation reaches every worker within this)
CACHE_S = 2.0
_TOKEN = re.compile(rf"{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,64}})")


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    retires_at: datetime | None
    rate_limit: str | None

    def usable(self, now: datetime) -> bool:
        ends = [moment for moment in (self.expires_at, self.revoked_at, self.retires_at) if moment]
        return all(_utc(moment) > now for moment in ends)

    def state(self, now: datetime) -> str:
        if self.revoked_at and _utc(self.revoked_at) <= now:
            return "revoked"
        if self.expires_at and _utc(self.expires_at) <= now:
            return "expired"
        if self.retires_at:
            return "retired" if _utc(self.retires_at) <= now else "retiring"
        return "active"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` -> timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhms])\s*", text or "")
    if match is None:
        raise ConfigError(f"{text!r} is not a duration such as 90d, 12h, 30m")
    unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def create(
    engine: Engine,
    name: str,
    scopes: str,
    expires: timedelta | None = None,
    rate_limit: str | None = None,
) -> tuple[KeyInfo, str]:
    """A new key; returns its record and the full key, which is never stored or shown again."""
    granted = parse_scopes(scopes)
    if rate_limit is not None:
        from recognizer.auth.ratelimit import parse_rate

        parse_rate(rate_limit, "--rate-limit")  # refused now, not as a 500 on every request
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = f"{PREFIX}_{key_id}_{secret}"
    now = datetime.now(UTC)
    row = {
        "key_id": key_id,
        "name": name,
        "secret_hash": _hash(token),
        "scopes": " ".join(sorted(granted)),
        "rate_limit": rate_limit,
        "created_at": now,
        "expires_at": now + expires if expires else None,
    }
    with engine.begin() as connection:
        connection.execute(insert(t), row)
    return get(engine, key_id), token


def get(engine: Engine, key_id: str) -> KeyInfo:
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.key_id == key_id)).first()
    if row is None:
        raise NotFoundError(f"no API key {key_id} (see `recognizer keys list`)")
    return _info(row)


def list_keys(engine: Engine) -> list[KeyInfo]:
    with engine.connect() as connection:
        return [_info(row) for row in connection.execute(select(t).order_by(t.c.created_at))]


def revoke(engine: Engine, key_id: str) -> KeyInfo:
    get(engine, key_id)
    with engine.begin() as connection:
        connection.execute(update(t).where(t.c.key_id == key_id).values(revoked_at=datetime.now(UTC)))
    return get(engine, key_id)


def rotate(engine: Engine, key_id: str, grace: timedelta) -> tuple[KeyInfo, str]:
    """A new key with the same name, scopes, expiry and limit; the old one keeps working for ``grace``."""
    old = get(engine, key_id)
    if not old.usable(datetime.now(UTC)):
        raise ConfigError(f"key {key_id} is {old.state(datetime.now(UTC))}; create a new one instead")
    remaining = _utc(old.expires_at) - datetime.now(UTC) if old.expires_at else None
    new, token = create(engine, old.name, " ".join(old.scopes), remaining, old.rate_limit)
    with engine.begin() as connection:
        connection.execute(update(t).where(t.c.key_id == key_id).values(retires_at=datetime.now(UTC) + grace))
    return new, token


def _info(row: object) -> KeyInfo:
    r = row._mapping  # type: ignore[attr-defined]
    return KeyInfo(
        r["key_id"],
        r["name"],
        frozenset(r["scopes"].split()),
        r["created_at"],
        r["expires_at"],
        r["revoked_at"],
        r["retires_at"],
        r["rate_limit"],
    )


class KeyVerifier:
    """Presented key -> Principal, or None; reads the database at most every CACHE_S per key."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[float, str | None, KeyInfo | None]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal | None:
        match = _TOKEN.fullmatch(token.strip())
        if match is None:
            return None
        stored_hash, info = self._lookup(match[1])
        if stored_hash is None or info is None:
            return None
        if not hmac.compare_digest(stored_hash, _hash(match[0])) or not info.usable(datetime.now(UTC)):
            return None
        return Principal("key", info.key_id, info.scopes, info.rate_limit)

    def _lookup(self, key_id: str) -> tuple[str | None, KeyInfo | None]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1], cached[2]
        with self.engine.connect() as connection:
            row = connection.execute(select(t).where(t.c.key_id == key_id)).first()
        found = (row.secret_hash, _info(row)) if row is not None else (None, None)
        with self._lock:
            if len(self._cache) > 10_000:  # random ids from attackers must not grow it forever
                self._cache.clear()
            self._cache[key_id] = (now, *found)
        return found

    def any_configured(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(t.c.id).limit(1)).first() is not None

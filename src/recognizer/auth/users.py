"""Users of the web page: names, Argon2id password hashes (argon2-cffi), roles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from recognizer.auth.principal import Principal
from recognizer.auth.scopes import ROLE_SCOPES
from recognizer.errors import ConfigError, NotFoundError
from recognizer.storage.tables import users as t

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
MIN_PASSWORD = 8
#: verified against when the user does not exist, so both paths take the same time
_DUMMY_HASH = _hasher.hash("not a real password")


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    created_at: datetime
    disabled: bool
    session_epoch: int

    @property
    def scopes(self) -> frozenset[str]:
        return ROLE_SCOPES[self.role]


def _check(name: str, role: str | None = None, password: str | None = None) -> None:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"user name {name!r}: use 1-64 letters, digits and . _ @ -")
    if role is not None and role not in ROLE_SCOPES:
        raise ConfigError(f"role must be one of {', '.join(ROLE_SCOPES)}, not {role!r}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password is too short: use at least {MIN_PASSWORD} characters")


def add(engine: Engine, name: str, password: str, role: str) -> UserInfo:
    _check(name, role, password)
    row = {
        "name": name,
        "password_hash": _hasher.hash(password),
        "role": role,
        "created_at": datetime.now(UTC),
    }
    try:
        with engine.begin() as connection:
            connection.execute(insert(t), row)
    except IntegrityError:
        raise ConfigError(
            f"user {name} exists already; `recognizer users passwd {name}` changes the password"
        ) from None
    return get(engine, name)


def get(engine: Engine, name: str) -> UserInfo:
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no user {name} (see `recognizer users list`)")
    return _info(row)


def list_users(engine: Engine) -> list[UserInfo]:
    with engine.connect() as connection:
        return [_info(row) for row in connection.execute(select(t).order_by(t.c.name))]


def set_password(engine: Engine, name: str, password: str) -> None:
    """New password; every session issued before is ended."""
    _check(name, password=password)
    get(engine, name)
    with engine.begin() as connection:
        connection.execute(
            update(t)
            .where(t.c.name == name)
            .values(password_hash=_hasher.hash(password), session_epoch=t.c.session_epoch + 1)
        )


def end_sessions(engine: Engine, name: str) -> None:
    """Log the user out everywhere: cookies issued before this stop working."""
    with engine.begin() as connection:
        connection.execute(update(t).where(t.c.name == name).values(session_epoch=t.c.session_epoch + 1))


def set_role(engine: Engine, name: str, role: str) -> None:
    _check(name, role)
    get(engine, name)
    with engine.begin() as connection:
        connection.execute(update(t).where(t.c.name == name).values(role=role))


def remove(engine: Engine, name: str) -> None:
    get(engine, name)
    with engine.begin() as connection:
        connection.execute(delete(t).where(t.c.name == name))


def authenticate(engine: Engine, name: str, password: str) -> UserInfo | None:
    """The user if the password is right (and the account enabled), else None, in constant-ish time."""
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.name == name)).first() if _NAME.fullmatch(name) else None
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    return _info(row)


def principal(engine: Engine, name: str, epoch: int) -> Principal | None:
    """A session's user, if it still exists, is enabled, and the session is not older than a
    password change."""
    try:
        user = get(engine, name)
    except NotFoundError:
        return None
    if user.disabled or user.session_epoch != epoch:
        return None
    return Principal("user", user.name, user.scopes)


def any_configured(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(select(t.c.id).limit(1)).first() is not None


def _info(row: object) -> UserInfo:
    r = row._mapping  # type: ignore[attr-defined]
    return UserInfo(r["name"], r["role"], r["created_at"], r["disabled_at"] is not None, r["session_epoch"])

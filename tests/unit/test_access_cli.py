"""`recognizer keys ...` and `recognizer users ...` as an operator runs them: what is printed (and
where), what is stored (hashes only), what each state change does to verification and sessions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update

from recognizer.auth import keys, users
from recognizer.auth.sessions import Sessions, load_secret
from recognizer.cli import main
from recognizer.storage import database
from recognizer.storage.tables import api_keys
from recognizer.storage.tables import users as users_table

KEY = re.compile(r"rk_([0-9a-f]{12})_[A-Za-z0-9_-]{20,64}")
PASSWORD = "correct horse battery"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("RECOGNIZER_DATA_DIR", str(path))
    monkeypatch.delenv("RECOGNIZER_DATABASE_URL", raising=False)
    return path


@pytest.fixture
def runner(data_dir) -> CliRunner:
    return CliRunner()


@pytest.fixture
def engine(data_dir) -> Iterator[Engine]:
    """The database the commands write, opened the way the server opens it."""
    engine = database.make_engine(f"sqlite:///{data_dir / 'recognizer.db'}")
    yield engine
    engine.dispose()


def run(runner: CliRunner, *args: str, stdin: str | None = None):
    return runner.invoke(main, list(args), input=stdin)


def one_line_error(result) -> str:
    """A refusal: exit code 2, one line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def create_key(runner: CliRunner, *args: str) -> tuple[str, str]:
    """(key id, full key) from `keys create`."""
    result = run(runner, "keys", "create", *args)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    match = KEY.fullmatch(token)
    assert match, f"stdout is not exactly one key: {result.stdout!r}"
    return match[1], token


def listed(runner: CliRunner) -> dict[str, str]:
    """key id -> state, from `keys list`."""
    result = run(runner, "keys", "list")
    assert result.exit_code == 0, result.output
    return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}


# -- keys ------------------------------------------------------------------------------------------


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(runner, engine):
    result = run(runner, "keys", "create", "--name", "ci", "--scopes", "classify,history:read")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert KEY.fullmatch(token) and result.stdout.count("rk_") == 1  # stdout: the key, nothing else
    key_id = token.split("_")[1]
    assert token not in result.stderr and key_id in result.stderr and "not shown again" in result.stderr

    principal = keys.KeyVerifier(engine).verify(token)
    assert principal is not None and principal.client == f"key:{key_id}"
    assert principal.scopes == {"classify", "history:read"}

    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(api_keys))]
    assert len(rows) == 1 and rows[0]["secret_hash"] == hashlib.sha256(token.encode()).hexdigest()
    secret = token.split("_", 2)[2]
    stored = " ".join(str(value) for value in rows[0].values())
    assert secret not in stored and token not in stored

    again = run(runner, "keys", "list")
    assert key_id in again.stdout and secret not in again.output  # never shown again
    assert keys.KeyVerifier(engine).verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


def test_an_unknown_scope_is_refused_in_one_line(runner, engine):
    line = one_line_error(run(runner, "keys", "create", "--name", "x", "--scopes", "classify,root"))
    assert "unknown scope(s) root" in line and "history:read" in line  # names the choices
    assert one_line_error(run(runner, "keys", "create", "--name", "x", "--expires", "soon"))
    assert keys.list_keys(engine) == []


def test_a_malformed_rate_limit_is_refused_at_creation(runner, engine):
    """Stored as given, it would only fail once a request parses it (a 500 on every call)."""
    line = one_line_error(run(runner, "keys", "create", "--name", "x", "--rate-limit", "lots"))
    assert "lots" in line
    assert keys.list_keys(engine) == []


def test_keys_list_shows_active_revoked_expired_and_retiring(runner, engine):
    active, _ = create_key(runner, "--name", "active", "--expires", "90d")
    revoked, revoked_token = create_key(runner, "--name", "revoked")
    expired, expired_token = create_key(runner, "--name", "expired", "--expires", "1h")
    rotated, rotated_token = create_key(runner, "--name", "rotated", "--rate-limit", "7/minute")

    result = run(runner, "keys", "revoke", revoked)
    assert result.exit_code == 0 and f"key {revoked} revoked" in result.stdout
    with engine.begin() as connection:  # an hour later
        connection.execute(
            update(api_keys)
            .where(api_keys.c.key_id == expired)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    rotation = run(runner, "keys", "rotate", rotated, "--grace", "24h")
    assert rotation.exit_code == 0, rotation.output
    successor_token = rotation.stdout.strip()
    successor = KEY.fullmatch(successor_token)[1]
    assert f"replaces {rotated}" in rotation.stderr and successor_token not in rotation.stderr

    states = listed(runner)
    assert states == {
        active: "active",
        revoked: "revoked",
        expired: "expired",
        rotated: "retiring",
        successor: "active",
    }
    expiry = (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d")
    rows = run(runner, "keys", "list").stdout.splitlines()
    assert any(row.startswith(active) and f"expires {expiry}" in row for row in rows)
    verifier = keys.KeyVerifier(engine)
    assert verifier.verify(revoked_token) is None and verifier.verify(expired_token) is None
    old, new = verifier.verify(rotated_token), verifier.verify(successor_token)
    assert old is not None and new is not None, "both work during the grace period"
    assert new.scopes == old.scopes and new.rate_limit == old.rate_limit == "7/minute"
    assert keys.get(engine, successor).name == "rotated"


def test_rotate_with_no_grace_retires_the_old_key_at_once(runner, engine):
    key_id, token = create_key(runner, "--name", "svc", "--scopes", "history:read")
    rotation = run(runner, "keys", "rotate", key_id, "--grace", "0s")
    assert rotation.exit_code == 0, rotation.output
    assert listed(runner)[key_id] == "retired"
    verifier = keys.KeyVerifier(engine)
    assert verifier.verify(token) is None and verifier.verify(rotation.stdout.strip()) is not None


def test_revoke_and_rotate_refuse_what_cannot_be_done_in_one_line(runner, engine):
    assert "no API key 000000000000" in one_line_error(run(runner, "keys", "revoke", "000000000000"))
    key_id, _ = create_key(runner, "--name", "gone")
    assert run(runner, "keys", "revoke", key_id).exit_code == 0
    assert "revoked" in one_line_error(run(runner, "keys", "rotate", key_id))
    assert len(keys.list_keys(engine)) == 1  # no successor for a revoked key


# -- users -----------------------------------------------------------------------------------------


def test_users_add_reads_the_password_from_stdin_and_stores_argon2id(runner, engine):
    result = run(
        runner, "users", "add", "ada", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "user ada added (operator)" in result.stdout and PASSWORD not in result.output
    with engine.connect() as connection:
        row = connection.execute(select(users_table)).one()
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    assert users.authenticate(engine, "ada", PASSWORD).role == "operator"
    assert users.authenticate(engine, "ada", PASSWORD + "!") is None
    assert run(runner, "users", "list").stdout.split() == ["ada", "operator", "active"]


def test_a_duplicate_user_and_a_short_password_are_refused(runner, engine):
    add = ("users", "add", "ada", "--password-stdin")
    assert run(runner, *add, stdin=PASSWORD + "\n").exit_code == 0
    line = one_line_error(run(runner, *add, stdin="another password\n"))
    assert "exists already" in line and "users passwd ada" in line
    assert users.authenticate(engine, "ada", PASSWORD) is not None  # the first password still holds

    line = one_line_error(run(runner, "users", "add", "bob", "--password-stdin", stdin="short\n"))
    assert "too short" in line
    assert one_line_error(run(runner, "users", "add", "bob", "--password-stdin", stdin=""))  # EOF
    assert run(runner, "users", "add", "bob", "--role", "root", "--password-stdin").exit_code == 2
    assert [user.name for user in users.list_users(engine)] == ["ada"]


def test_role_change(runner, engine):
    assert run(runner, "users", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n").exit_code == 0
    assert users.get(engine, "ada").role == "viewer"  # the default
    result = run(runner, "users", "role", "ada", "admin")
    assert result.exit_code == 0 and "ada is now admin" in result.stdout
    assert users.get(engine, "ada").scopes >= {"admin", "history:delete"}
    assert run(runner, "users", "list").stdout.split()[:2] == ["ada", "admin"]
    assert "no user nobody" in one_line_error(run(runner, "users", "role", "nobody", "viewer"))


def test_passwd_ends_every_older_session(runner, engine, data_dir):
    assert run(runner, "users", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n").exit_code == 0
    sessions = Sessions(load_secret(None, data_dir))
    cookie, _ = sessions.issue("ada", users.get(engine, "ada").session_epoch)
    session = sessions.read(cookie)
    assert users.principal(engine, session.user, session.epoch) is not None

    result = run(runner, "users", "passwd", "ada", "--password-stdin", stdin="a new long password\n")
    assert result.exit_code == 0 and "sessions have ended" in result.stdout
    assert users.principal(engine, session.user, session.epoch) is None  # the old cookie stops working
    assert users.get(engine, "ada").session_epoch == session.epoch + 1
    fresh = sessions.read(sessions.issue("ada", users.get(engine, "ada").session_epoch)[0])
    assert users.principal(engine, fresh.user, fresh.epoch) is not None
    assert users.authenticate(engine, "ada", PASSWORD) is None
    assert users.authenticate(engine, "ada", "a new long password") is not None

    short = run(runner, "users", "passwd", "ada", "--password-stdin", stdin="tiny\n")
    assert "too short" in one_line_error(short)
    assert users.get(engine, "ada").session_epoch == session.epoch + 1  # a refused change ends nothing


def test_users_remove(runner, engine, data_dir):
    assert run(runner, "users", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n").exit_code == 0
    sessions = Sessions(load_secret(None, data_dir))
    session = sessions.read(sessions.issue("ada", 0)[0])
    result = run(runner, "users", "remove", "ada")
    assert result.exit_code == 0 and "user ada removed" in result.stdout
    assert run(runner, "users", "list").stdout == ""
    assert users.principal(engine, session.user, session.epoch) is None
    assert users.authenticate(engine, "ada", PASSWORD) is None
    assert "no user ada" in one_line_error(run(runner, "users", "remove", "ada"))

"""``recognizer keys ...`` and ``recognizer users ...``: credentials, kept in the history database."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from sqlalchemy import Engine

from recognizer.cli.common import exit_on_error, make_settings


def _engine() -> Engine:
    from recognizer.storage import database
    from recognizer.storage.history import prepare_schema

    engine = database.make_engine(make_settings().history_database)
    prepare_schema(engine)
    return engine


@click.group("keys")
def keys_command() -> None:
    """Create, list, revoke and rotate API keys (sent as Authorization: Bearer KEY or X-API-Key)."""


@keys_command.command("create")
@click.option("--name", required=True, help="What the key is for (shown in lists).")
@click.option("--scopes", default="classify", show_default=True, help="Comma-separated scopes.")
@click.option("--expires", help="Lifetime such as 90d or 12h (default: never).")
@click.option("--rate-limit", help="This key's limit for every scope, e.g. 100/minute.")
def keys_create(name: str, scopes: str, expires: str | None, rate_limit: str | None) -> None:
    """Print a new key once; only its hash is stored."""
    from recognizer.auth import keys

    with exit_on_error():
        lifetime = keys.parse_duration(expires) if expires else None
        info, token = keys.create(_engine(), name, scopes, lifetime, rate_limit)
    click.echo(token)
    ends = f", expires {info.expires_at:%Y-%m-%d %H:%M} UTC" if info.expires_at else ""
    click.echo(
        f"recognizer: key {info.key_id} ({', '.join(sorted(info.scopes))}{ends}): "
        "store it now, it is not shown again",
        err=True,
    )


@keys_command.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, state."""
    from recognizer.auth import keys

    with exit_on_error():
        found = keys.list_keys(_engine())
    now = datetime.now(UTC)
    for info in found:
        ends = f"{info.expires_at:%Y-%m-%d}" if info.expires_at else "never"
        click.echo(
            f"{info.key_id}  {info.state(now):<8} expires {ends:<10}  "
            f"{','.join(sorted(info.scopes)):<40} {info.name}"
        )


@keys_command.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Stop a key at once (every worker within 2 s)."""
    from recognizer.auth import keys

    with exit_on_error():
        keys.revoke(_engine(), key_id)
    click.echo(f"recognizer: key {key_id} revoked")


@keys_command.command("rotate")
@click.argument("key_id")
@click.option("--grace", default="24h", show_default=True, help="How long the old key keeps working.")
def keys_rotate(key_id: str, grace: str) -> None:
    """Print a replacement key; the old one works until the grace period ends."""
    from recognizer.auth import keys

    with exit_on_error():
        info, token = keys.rotate(_engine(), key_id, keys.parse_duration(grace))
    click.echo(token)
    click.echo(f"recognizer: key {info.key_id} replaces {key_id}, which stops in {grace}", err=True)


@click.group("users")
def users_command() -> None:
    """Users of the web page: add, list, passwd, role, remove."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_command.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["viewer", "operator", "admin"]), default="viewer", show_default=True
)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (for scripts).")
def users_add(name: str, role: str, password_stdin: bool) -> None:
    """Add a user; the password is prompted for (or read from stdin) and stored as Argon2id."""
    from recognizer.auth import users

    password = _password(password_stdin)
    with exit_on_error():
        users.add(_engine(), name, password, role)
    click.echo(f"recognizer: user {name} added ({role})")


@users_command.command("list")
def users_list() -> None:
    from recognizer.auth import users

    with exit_on_error():
        for user in users.list_users(_engine()):
            click.echo(f"{user.name:<24} {user.role:<9} {'disabled' if user.disabled else 'active'}")


@users_command.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def users_passwd(name: str, password_stdin: bool) -> None:
    """Change a password; the user's open sessions end."""
    from recognizer.auth import users

    password = _password(password_stdin)
    with exit_on_error():
        users.set_password(_engine(), name, password)
    click.echo(f"recognizer: password of {name} changed; their sessions have ended")


@users_command.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["viewer", "operator", "admin"]))
def users_role(name: str, role: str) -> None:
    from recognizer.auth import users

    with exit_on_error():
        users.set_role(_engine(), name, role)
    click.echo(f"recognizer: {name} is now {role}")


@users_command.command("remove")
@click.argument("name")
def users_remove(name: str) -> None:
    from recognizer.auth import users

    with exit_on_error():
        users.remove(_engine(), name)
    click.echo(f"recognizer: user {name} removed")

"""``recognizer serve``: the web page and the HTTP API, under uvicorn or (``--ray``) on Ray Serve."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from recognizer.cli.common import exit_on_error, fail, make_settings, model_options
from recognizer.config import Settings
from recognizer.errors import ConfigError, RecognizerError

#: where prometheus_client's multi-process mode keeps each worker's metric files
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@click.command("serve")
@click.option("--host", help="Listen address (default 127.0.0.1; 0.0.0.0 to serve the network).")
@click.option("--port", type=int, help="Port (default 8000).")
@click.option("--workers", type=int, help="Server processes (default 1); cores are split between them.")
@model_options
@click.option("--max-wait-ms", type=float, help="Longest wait for a micro-batch to fill (default 5).")
@click.option("--access-log/--no-access-log", default=None, help="Log every request (default on).")
@click.option("--history", type=click.Choice(["on", "off"]), help="Record every recognition (default on).")
@click.option(
    "--history-images",
    type=click.Choice(["none", "thumbnail", "full"]),
    help="Pixels kept with history rows (default none: only the hash).",
)
@click.option("--migrate", is_flag=True, default=None, help="Migrate an older history schema before serving.")
@click.option(
    "--allow-anonymous",
    is_flag=True,
    default=None,
    help="Serve a network address with no API keys or users (anyone who reaches it gets in).",
)
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS certificate (PEM): serve HTTPS (with --ssl-keyfile).",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS private key (PEM).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    metavar="[local|auto|ADDRESS]",
    help="Serve on Ray Serve: a private local Ray (bare --ray or local), the cluster this machine "
    "joined (auto), or one at ADDRESS (host:6379, ray://host:10001). Needs the ray extra.",
)
@click.option("--ray-replicas", type=int, help="Replicas (default 1); the minimum with --ray-max-replicas.")
@click.option("--ray-max-replicas", type=int, help="Autoscale up to this many replicas on ongoing requests.")
@click.option("--ray-cpus", type=float, help="CPUs per replica (default 1; also its engine threads).")
def command(
    ray_address: str | None,
    ray_replicas: int | None,
    ray_max_replicas: int | None,
    ray_cpus: float | None,
    **flags: Any,
) -> None:
    """Run the web page and HTTP API (http://127.0.0.1:8000 by default); --ray: on Ray Serve."""
    import uvicorn

    settings = make_settings(**flags)
    server = settings.server
    ray_flags = {"replicas": ray_replicas, "max_replicas": ray_max_replicas, "cpus": ray_cpus}
    if ray_address is None and any(value is not None for value in ray_flags.values()):
        fail("--ray-replicas, --ray-max-replicas and --ray-cpus need --ray")
    if ray_address is not None and server.workers != 1:
        fail("--workers does not apply with --ray: Serve runs replicas (--ray-replicas, --ray-max-replicas)")
    _check_history(settings)
    _check_access(settings)
    if ray_address is not None:
        _serve_on_ray(settings, ray_address, {k: v for k, v in ray_flags.items() if v is not None})
        return
    click.echo(
        f"recognizer: serving on http://{server.host}:{server.port} ({server.workers} worker(s))", err=True
    )
    common = {
        "host": server.host,
        "port": server.port,
        "log_level": "info",
        "access_log": server.access_log,
        # a webcam frame may be as large as an upload (uvicorn's own default is 16 MiB)
        "ws_max_size": settings.limits.max_image_bytes + 65536,
    }
    if server.ssl_certfile:
        common |= {
            "ssl_certfile": str(server.ssl_certfile),
            "ssl_keyfile": server.ssl_keyfile and str(server.ssl_keyfile),
        }
    if server.workers == 1:
        from recognizer.api import create_app

        uvicorn.run(create_app(settings), **common)
        return
    # Worker processes rebuild Settings from the environment, so pass the flags on through it.
    for key, value in flags.items():
        if value is not None:
            os.environ[f"RECOGNIZER_{key.upper()}"] = str(value)
    with shared_metrics_dir() as path:
        click.echo(f"recognizer: /metrics sums the workers' metrics, kept in {path}", err=True)
        uvicorn.run("recognizer.api.app:create_app_from_env", factory=True, workers=server.workers, **common)


def _serve_on_ray(settings: Settings, address: str, replica_flags: dict[str, Any]) -> None:
    """The same app on Ray Serve: replicas instead of --workers, Serve's batching instead of ours."""
    with exit_on_error():
        from recognizer.scaleout.serve import ReplicaOptions, ray_serve, serve_on_ray

        ray_serve()  # the missing extra is one line, before anything starts
        options = ReplicaOptions(**replica_flags)
        server = settings.server
        scheme = "https" if server.ssl_certfile else "http"

        def announce(where: str) -> None:
            click.echo(f"recognizer: serving on {scheme}://{server.host}:{server.port} ({where})", err=True)

        serve_on_ray(settings, address, options, announce)


def _check_history(settings: Settings) -> None:
    """Create, migrate (--migrate) or refuse the history schema once, before any worker starts."""
    if settings.history.mode == "off":
        return
    from recognizer.storage import database
    from recognizer.storage.history import prepare_schema

    with exit_on_error():
        engine = database.make_engine(settings.history_database)
        try:
            prepare_schema(engine, settings.history.migrate)
        except RecognizerError:
            raise
        except Exception as exc:  # unreachable server, bad credentials: one line, not a traceback
            url = engine.url.render_as_string(hide_password=True)
            raise ConfigError(f"cannot open the history database {url}: {exc}".splitlines()[0]) from None
        finally:
            engine.dispose()
    click.echo(f"recognizer: history in {settings.history_database_display}", err=True)


def _check_access(settings: Settings) -> None:
    """Safe by default: a network address needs API keys or users, or an explicit --allow-anonymous."""
    from recognizer.api.guard import is_loopback
    from recognizer.auth.ratelimit import parse_policy, parse_rate

    host, auth = settings.server.host, settings.auth
    with exit_on_error():  # here, once, rather than a traceback in every worker
        parse_policy(auth.rate_limits)
        parse_rate(auth.login_rate_limit, "RECOGNIZER_LOGIN_RATE_LIMIT")
    if is_loopback(host) or auth.allow_anonymous or auth.enforce == "on":
        return
    fixes = (
        "create credentials first (`recognizer keys create --name NAME --scopes classify` or "
        "`recognizer users add NAME --role admin`), or pass --allow-anonymous to accept an open server"
    )
    if auth.enforce == "off":
        fail(f"RECOGNIZER_AUTH=off on {host} would let anyone who reaches it in: {fixes}")
    from recognizer.auth import keys, users
    from recognizer.storage.history import open_database

    with exit_on_error():
        engine = open_database(settings)
        found = engine is not None and (
            users.any_configured(engine) or keys.KeyVerifier(engine).any_configured()
        )
    if not found:
        fail(f"refusing to serve {host} with no API keys or users: {fixes}")


@contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh directory for the workers' metric files (prometheus_client's multi-process mode),
    named in the environment before any worker starts, and removed when the server stops.

    A directory the user named in ``PROMETHEUS_MULTIPROC_DIR`` is used as it is and left in place:
    clearing it between runs is then theirs to do (old files would be summed in).
    """
    own = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    if own:
        os.environ[MULTIPROC_ENV] = own  # the old lower-case name: workers check the upper-case one
        yield own
        return
    path = tempfile.mkdtemp(prefix="recognizer-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)

"""``recognizer serve``: the web page and the HTTP API."""

from __future__ import annotations

import os
from typing import Any

import click

from recognizer.cli.common import make_settings, model_options


@click.command("serve")
@click.option("--host", help="Listen address (default 127.0.0.1; 0.0.0.0 to serve the network).")
@click.option("--port", type=int, help="Port (default 8000).")
@click.option("--workers", type=int, help="Server processes (default 1); cores are split between them.")
@model_options
@click.option("--max-wait-ms", type=float, help="Longest wait for a micro-batch to fill (default 5).")
@click.option("--access-log/--no-access-log", default=None, help="Log every request (default on).")
def command(**flags: Any) -> None:
    """Run the web page and HTTP API (http://127.0.0.1:8000 by default)."""
    import uvicorn

    settings = make_settings(**flags)
    server = settings.server
    click.echo(
        f"recognizer: serving on http://{server.host}:{server.port} ({server.workers} worker(s))", err=True
    )
    common = {"host": server.host, "port": server.port, "log_level": "info", "access_log": server.access_log}
    if server.workers == 1:
        from recognizer.api import create_app

        uvicorn.run(create_app(settings), **common)
        return
    # Worker processes rebuild Settings from the environment, so pass the flags on through it.
    for key, value in flags.items():
        if value is not None:
            os.environ[f"RECOGNIZER_{key.upper()}"] = str(value)
    uvicorn.run("recognizer.api.app:create_app_from_env", factory=True, workers=server.workers, **common)

"""What both Ray adapters need before ``ray.init``: a quick answer on whether a cluster is there."""

from __future__ import annotations

import socket

from recognizer.errors import ConfigError

#: how long a cluster address may take to accept a TCP connection before it is called unreachable
CONNECT_TIMEOUT_S = 5.0


def check_reachable(address: str) -> None:
    """Ray retries an address that does not answer for minutes; a plain TCP connect tells in seconds."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"nothing answers at the Ray address {address!r} ({exc.strerror or exc}); check the head "
            "node's address and port (6379, or 10001 for ray://), or use --ray local"
        ) from None

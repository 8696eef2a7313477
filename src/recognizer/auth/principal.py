"""Who is asking: a key, a logged-in user, or an anonymous address."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    #: "key", "user" or "anonymous"
    kind: str
    #: the key's public id, the user's name, or the client's address: what history rows record
    id: str
    scopes: frozenset[str]
    #: a per-key override of the rate limits ("100/minute"), else None
    rate_limit: str | None = None
    #: True when authenticated by the session cookie (state-changing requests then need CSRF)
    via_cookie: bool = False
    csrf: str | None = None

    @property
    def client(self) -> str:
        """The history row's ``client``: ``key:ID``, ``user:NAME``, or the address."""
        return self.id if self.kind == "anonymous" else f"{self.kind}:{self.id}"

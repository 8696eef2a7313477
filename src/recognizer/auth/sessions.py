"""Login sessions for the web page: a signed cookie, and the secret that signs it.

The cookie holds the user's name, the user's session epoch (bumped by a password change, which
ends older sessions) and a CSRF token; it is signed and time-stamped with itsdangerous, HttpOnly,
SameSite=Strict, and Secure when the server speaks TLS. The page reads the CSRF token from
``GET /v1/session`` and sends it as ``X-CSRF-Token`` on every state-changing request.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "recognizer_session"
CSRF_HEADER = "X-CSRF-Token"
#: how long a login lasts
MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    user: str
    epoch: int
    csrf: str


class Sessions:
    def __init__(self, secret: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="recognizer.session")

    def issue(self, user: str, epoch: int) -> tuple[str, Session]:
        session = Session(user, epoch, secrets.token_urlsafe(24))
        cookie = self._serializer.dumps({"u": user, "e": epoch, "c": session.csrf})
        return cookie, session

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=MAX_AGE_S)
            return Session(str(data["u"]), int(data["e"]), str(data["c"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None


def load_secret(given: str | None, data_dir: Path) -> bytes:
    """RECOGNIZER_SECRET_KEY, else ``data_dir/secret.key``, made once (0600) and shared by every
    worker, so a session cookie from one worker is good in all and survives restarts."""
    if given:
        return given.encode()
    path = data_dir.expanduser() / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # the first worker writes it; the others read it
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(48))
    secret = path.read_text().strip()
    if len(secret) < 32:  # a worker read it while another was still writing it
        import time

        time.sleep(0.1)
        secret = path.read_text().strip()
    return secret.encode()

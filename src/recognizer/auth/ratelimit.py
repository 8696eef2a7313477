"""Rate limits per principal and scope, with the ``limits`` library (fixed windows): in memory for
one worker, in Redis (RECOGNIZER_REDIS_URL) for exact totals across workers and machines.

When Redis cannot be reached the policy is explicit: ``open`` lets the request through and counts
it in a metric (the default: availability first), ``closed`` answers 503. Either way no route
answers 500, and health checks never touch the limiter.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from recognizer.errors import ConfigError, RateLimitedError, RateLimiterUnavailableError

log = logging.getLogger("recognizer.auth")


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """The RateLimit header fields (IETF draft), as most clients and proxies read them."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }


def parse_rate(text: str, what: str = "rate limit") -> RateLimitItem:
    """``"100/minute"`` -> the limit, or a ConfigError naming ``what``."""
    try:
        return parse(text.strip())
    except ValueError:
        raise ConfigError(f"{what} {text!r}: write N/second|minute|hour|day, e.g. 100/minute") from None


def parse_policy(text: str) -> dict[str, RateLimitItem]:
    """``"classify=600/minute; history:read=100/minute"`` -> scope -> limit."""
    policy: dict[str, RateLimitItem] = {}
    for part in filter(None, (p.strip() for p in text.replace(",", ";").split(";"))):
        scope, _, rate = part.partition("=")
        try:
            policy[scope.strip()] = parse(rate.strip())
        except ValueError:
            raise ConfigError(f"rate limit {part!r}: write SCOPE=N/second|minute|hour|day") from None
    return policy


class LocalWindows:
    """Fixed windows in this process's memory, with the same semantics as limits' fixed window.

    Not limits' MemoryStorage: that one starts a timer thread every 10 ms to expire entries,
    which took 8 % of a single worker's requests per second here (benchmarks/auth.py). This is
    a dict under a lock, expired lazily: O(1) per hit, no thread.
    """

    #: windows kept before expired ones are swept
    SWEEP_AT = 100_000

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, scope: str, who: str, cost: int) -> tuple[bool, int, float]:
        """(allowed, remaining, reset time) after charging ``cost`` if it fits."""
        key, now, period = (str(item), scope, who), time.time(), item.get_expiry()
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now - start >= period:
                start, used = now, 0
            allowed = used + cost <= item.amount
            if allowed:
                used += cost
                self._windows[key] = (start, used)
            if len(self._windows) > self.SWEEP_AT:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < period}
        return allowed, item.amount - used, start + period


class RateLimiter:
    def __init__(self, policy: dict[str, RateLimitItem], redis_url: str | None, fail_open: bool) -> None:
        self.policy, self.fail_open = policy, fail_open
        self.local = LocalWindows()
        self.storage: Storage | None = (
            RedisStorage(redis_url, wrap_exceptions=True, socket_connect_timeout=0.5, socket_timeout=0.5)
            if redis_url
            else None
        )
        # A fixed window that opens at a caller's first request: O(1) per hit in memory and in
        # Redis (one atomic INCR), exact across workers; a moving window's per-hit cost grows
        # with the limit, for smoother edges.
        self.strategy = FixedWindowRateLimiter(self.storage) if self.storage is not None else None
        #: counts live in Redis: every hit is a network round trip
        self.remote = bool(redis_url)
        #: requests let through because the limiter's store was unreachable (fail open)
        self.unavailable = 0
        self._warned = 0.0

    def applies(self, scope: str, override: str | None = None) -> bool:
        return override is not None or scope in self.policy

    def hit(self, who: str, scope: str, cost: int = 1, override: str | None = None) -> Decision | None:
        """Charge ``cost`` to ``who`` under ``scope``; None when no limit applies. Raises
        RateLimitedError past the limit, RateLimiterUnavailableError when closed and unreachable."""
        item = parse(override) if override else self.policy.get(scope)
        if item is None:
            return None
        if self.strategy is None:
            allowed, remaining, reset_time = self.local.hit(item, scope, who, cost)
        else:
            try:
                allowed = self.strategy.hit(item, scope, who, cost=cost)
                stats = self.strategy.get_window_stats(item, scope, who)
            except Exception as exc:  # limits.errors.StorageError: Redis down or slow
                return self._unreachable(exc)
            remaining, reset_time = stats.remaining, stats.reset_time
        reset = max(0, math.ceil(reset_time - time.time()))
        decision = Decision(item.amount, max(0, remaining), reset)
        if not allowed:
            raise RateLimitedError(
                f"rate limit for {scope} reached ({item}); retry in {max(1, reset)} s",
                headers=decision.headers() | {"Retry-After": str(max(1, reset))},
            )
        return decision

    def _unreachable(self, exc: Exception) -> None:
        self.unavailable += 1
        if time.monotonic() - self._warned > 10:  # one log line per 10 s, not per request
            self._warned = time.monotonic()
            log.warning(
                "rate limiter store unreachable (%s); failing %s", exc, "open" if self.fail_open else "closed"
            )
        if not self.fail_open:
            raise RateLimiterUnavailableError("the rate limiter is unavailable; retry shortly")
        return None

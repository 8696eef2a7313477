"""Turning a noisy score per frame into "started" and "ended": smoothing with hysteresis and dwell.

A classifier's score for "cat" flickers from frame to frame (a blurred frame, a turned head), so a
monitoring user who is told "cat" on every frame above 0.5 gets a storm of events. Three things
tame it, as in Frigate's median-score smoothing and every alarm panel's hysteresis:

* **smoothing** over the last ``window`` frames: the mean score (``average``), or "at least ``k`` of
  the last ``window`` frames" (``k_of_n``), which ignores how high a lone spike goes;
* **two thresholds**: the smoothed score must reach ``on`` to start, and fall below ``off`` (lower)
  to end, so a score hovering around one threshold does not toggle;
* **dwell times**: the start condition must hold ``min_duration_s`` before "started" is reported,
  and the end condition ``min_gap_s`` before "ended" (a cat that leaves for half a second has not
  left).

Times are the frames' own timestamps (media time for a file replayed with ``--no-realtime``), so a
replay gives the same transitions every run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from recognizer.errors import ConfigError

Method = Literal["average", "k_of_n"]


@dataclass(frozen=True)
class Smoothing:
    method: Method = "average"
    window: int = 5
    #: k_of_n: how many of the last ``window`` frames must be at or above the threshold
    k: int = 3
    on: float = 0.5
    off: float = 0.3
    min_duration_s: float = 0.0
    min_gap_s: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in ("average", "k_of_n"):
            raise ConfigError(f"smoothing must be 'average' or 'k_of_n', not {self.method!r}")
        if not (isinstance(self.window, int) and 1 <= self.window <= 1000):
            raise ConfigError(f"window must be a whole number of frames from 1 to 1000, not {self.window!r}")
        if self.method == "k_of_n" and not (isinstance(self.k, int) and 1 <= self.k <= self.window):
            raise ConfigError(f"k must be a whole number from 1 to window ({self.window}), not {self.k!r}")
        for name in ("on", "off"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise ConfigError(f"threshold {name} must be a score above 0 and at most 1, not {value!r}")
        if self.off > self.on:
            raise ConfigError(f"threshold off ({self.off}) must not be above on ({self.on})")
        for name in ("min_duration_s", "min_gap_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{name} must be a number of seconds, 0 or more, not {value!r}")


@dataclass(frozen=True)
class Transition:
    """What a :class:`Track` reports: ``started`` (``at`` = when the condition began to hold) or
    ``ended`` (``at`` = when it stopped holding; ``duration_s`` from start to then)."""

    kind: Literal["started", "ended"]
    at: float
    #: when the transition was decided (the frame that confirmed it)
    decided_at: float
    #: the highest smoothed score while active (ended), or the score that started it (started)
    peak: float
    duration_s: float = 0.0


class Track:
    """One subject (a rule) on one stream: feed it (time, score) per frame, in time order."""

    def __init__(self, smoothing: Smoothing) -> None:
        self.smoothing = smoothing
        self._scores: deque[float] = deque(maxlen=smoothing.window)
        self.active = False
        self._since: float | None = None  # when the pending change began to hold
        self._started_at = 0.0
        self.peak = 0.0
        self.level = 0.0

    def observe(self, t: float, score: float) -> Transition | None:
        self._scores.append(score)
        self.level = sum(self._scores) / len(self._scores)
        if self.active:
            self.peak = max(self.peak, self.level)
            return self._maybe_end(t)
        return self._maybe_start(t)

    def finish(self, t: float) -> Transition | None:
        """The stream ended (or was stopped): an active subject ends here."""
        if not self.active:
            return None
        self.active = False
        end = self._since if self._since is not None else t
        return Transition("ended", end, t, self.peak, end - self._started_at)

    def _maybe_start(self, t: float) -> Transition | None:
        if not self._high():
            self._since = None
            return None
        if self._since is None:
            self._since = t
        if t - self._since < self.smoothing.min_duration_s:
            return None
        self.active, self._started_at, self.peak = True, self._since, self.level
        self._since = None
        return Transition("started", self._started_at, t, self.level)

    def _maybe_end(self, t: float) -> Transition | None:
        if not self._low():
            self._since = None
            return None
        if self._since is None:
            self._since = t
        if t - self._since < self.smoothing.min_gap_s:
            return None
        ended = Transition("ended", self._since, t, self.peak, self._since - self._started_at)
        self.active, self._since = False, None
        return ended

    def _high(self) -> bool:
        s = self.smoothing
        if s.method == "k_of_n":
            return sum(score >= s.on for score in self._scores) >= s.k
        return self.level >= s.on

    def _low(self) -> bool:
        s = self.smoothing
        if s.method == "k_of_n":
            return sum(score >= s.off for score in self._scores) < s.k
        return self.level < s.off

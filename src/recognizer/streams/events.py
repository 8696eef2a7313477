"""Per stream: frames' recognitions -> rule tracks -> events, with cooldowns.

An :class:`Event` carries an id made from what it is about (stream, rule, kind, when the condition
began), so the same change seen twice (a replayed file, a sink retrying after a restart) has the
same id and receivers can drop the copy. Cooldowns are kept by a :class:`CooldownStore`: in memory
here; a store shared by workers and kept across restarts plugs in the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

from recognizer.inference.results import Recognition
from recognizer.streams.rules import Rule
from recognizer.streams.smoothing import Track, Transition

Kind = Literal["started", "ended", "source_lost", "source_restored"]


@dataclass(frozen=True)
class Event:
    id: str
    kind: Kind
    stream: str
    #: the rule that fired (None for source_lost / source_restored)
    rule: str | None
    #: stream time in seconds: media time for a file, seconds since the epoch for a live source
    at: float
    #: started: the smoothed score that started it; ended: the peak while active
    score: float | None = None
    duration_s: float | None = None
    #: the best label on the deciding frame, for a human reading the log
    label: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    def line(self) -> str:
        """The CLI's one line per event."""
        what = f"{self.kind:<15} {self.rule or ''}".rstrip()
        extra = []
        if self.score is not None:
            extra.append(f"{'peak' if self.kind == 'ended' else 'score'} {self.score:.2f}")
        if self.duration_s is not None:
            extra.append(f"{self.duration_s:.1f} s")
        if self.label:
            extra.append(self.label)
        if self.reason:
            extra.append(self.reason)
        return f"{self.at:10.2f}  {self.stream}  {what}  {' · '.join(extra)}".rstrip()


def event_id(stream: str, rule: str | None, kind: str, at: float) -> str:
    return hashlib.sha256(f"{stream}\x00{rule}\x00{kind}\x00{at:.3f}".encode()).hexdigest()[:32]


class CooldownStore(Protocol):
    def allow(self, stream: str, rule: str, at: float, cooldown_s: float) -> bool:
        """True (and remember ``at``) unless a "started" of this rule is within the cooldown."""
        ...


class MemoryCooldowns:
    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}

    def allow(self, stream: str, rule: str, at: float, cooldown_s: float) -> bool:
        last = self._last.get((stream, rule))
        if last is not None and 0 <= at - last < cooldown_s:
            return False
        self._last[(stream, rule)] = at
        return True


class StreamRules:
    """The rules of one stream: feed it each classified frame; it answers the events it raised."""

    def __init__(self, stream: str, rules: list[Rule], cooldowns: CooldownStore | None = None) -> None:
        self.stream, self.rules = stream, rules
        self.cooldowns = cooldowns or MemoryCooldowns()
        self.tracks = {rule.name: Track(rule.smoothing) for rule in rules}
        self._muted: set[str] = set()  # rules whose current episode's start fell in a cooldown

    def observe(self, at: float, result: Recognition) -> list[Event]:
        label = result.predictions[0].label if result.predictions else None
        events = []
        for rule in self.rules:
            transition = self.tracks[rule.name].observe(at, rule.score(result))
            if transition is not None:
                events.extend(self._event(rule, transition, label))
        return sorted(events, key=lambda event: event.kind != "ended")  # what ended reads first

    def finish(self, at: float) -> list[Event]:
        """The source ended or the stream stopped: every active rule ends."""
        events = []
        for rule in self.rules:
            transition = self.tracks[rule.name].finish(at)
            if transition is not None:
                events.extend(self._event(rule, transition, None))
        return events

    def levels(self) -> dict[str, float]:
        """Each rule's current smoothed score (what the Live view shows)."""
        return {name: round(track.level, 4) for name, track in self.tracks.items()}

    def active(self) -> list[str]:
        return [name for name, track in self.tracks.items() if track.active]

    def _event(self, rule: Rule, transition: Transition, label: str | None) -> list[Event]:
        if transition.kind == "started":
            if rule.cooldown_s > 0 and not self.cooldowns.allow(
                self.stream, rule.name, transition.at, rule.cooldown_s
            ):
                self._muted.add(rule.name)
                return []
            self._muted.discard(rule.name)
            return [self._make(rule, "started", transition.at, transition.peak, None, label)]
        if rule.name in self._muted:
            self._muted.discard(rule.name)
            return []
        start = transition.at - transition.duration_s
        return [
            self._make(rule, "ended", transition.at, transition.peak, transition.duration_s, label, start)
        ]

    def _make(
        self,
        rule: Rule,
        kind: Kind,
        at: float,
        score: float,
        duration: float | None,
        label: str | None,
        began: float | None = None,
    ) -> Event:
        ident = event_id(self.stream, rule.name, kind, at if began is None else began)
        return Event(
            ident,
            kind,
            self.stream,
            rule.name,
            round(at, 3),
            round(score, 4),
            duration and round(duration, 3),
            label,
        )

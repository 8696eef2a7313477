"""Smoothing, hysteresis and dwell: a flickering score becomes one started and one ended."""

from __future__ import annotations

import pytest

from recognizer.errors import ConfigError
from recognizer.streams.smoothing import Smoothing, Track


def replay(smoothing: Smoothing, scores: list[float], fps: float = 2.0):
    track = Track(smoothing)
    found = [t for i, s in enumerate(scores) if (t := track.observe(i / fps, s)) is not None]
    end = track.finish(len(scores) / fps)
    return found + ([end] if end else [])


def test_a_lone_spike_and_a_lone_dropout_change_nothing():
    scores = [0.0] * 4 + [0.9] + [0.0] * 4 + [0.9] * 10 + [0.1] + [0.9] * 10 + [0.0] * 10
    events = replay(Smoothing("average", window=3, on=0.5, off=0.3), scores)
    assert [(e.kind, e.at) for e in events] == [("started", 5.0), ("ended", 16.0)]
    assert events[1].duration_s == pytest.approx(11.0) and events[1].peak == pytest.approx(0.9)


def test_hysteresis_a_score_hovering_between_off_and_on_keeps_its_state():
    hovering = [0.45, 0.4, 0.45, 0.4] * 5
    assert replay(Smoothing(window=1, on=0.5, off=0.3), [0.0, *hovering]) == []
    events = replay(Smoothing(window=1, on=0.5, off=0.3), [0.9, *hovering, 0.0])
    assert [e.kind for e in events] == ["started", "ended"] and events[1].at == pytest.approx(10.5)


def test_dwell_times_need_the_condition_to_hold():
    smoothing = Smoothing(window=1, on=0.5, off=0.3, min_duration_s=1.0, min_gap_s=1.0)
    short = replay(smoothing, [0.0, 0.9, 0.9, 0.0, 0.0, 0.0])  # 0.5 s above: not enough
    assert short == []
    events = replay(smoothing, [0.0, 0.9, 0.9, 0.9, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0])
    assert [(e.kind, e.at, e.decided_at) for e in events] == [("started", 0.5, 1.5), ("ended", 3.0, 4.0)]


def test_k_of_n_ignores_how_high_a_spike_goes():
    smoothing = Smoothing("k_of_n", window=5, k=3, on=0.6, off=0.4)
    assert replay(smoothing, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]) == []
    events = replay(smoothing, [0.7, 0.7, 0.7, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1])
    assert [(e.kind, e.at) for e in events] == [("started", 1.0), ("ended", 4.0)]


def test_an_active_subject_ends_when_the_stream_does():
    [started, ended] = replay(Smoothing(window=1), [0.9] * 4)
    assert started.kind == "started" and ended.kind == "ended" and ended.at == 2.0


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"on": 1.5}, "threshold on"),
        ({"off": 0.6, "on": 0.5}, "must not be above on"),
        ({"window": 0}, "window"),
        ({"method": "k_of_n", "k": 9, "window": 5}, "k must be"),
        ({"method": "median"}, "smoothing must be"),
        ({"min_duration_s": -1}, "min_duration_s"),
    ],
)
def test_bad_settings_are_refused_with_what_to_fix(bad, message):
    with pytest.raises(ConfigError, match=message):
        Smoothing(**bad)

"""The stream state file: cooldowns like MemoryCooldowns but shared and durable, claims that
de-duplicate across workers and restarts, the outbox's order, and the per-URL sender lease."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from recognizer.streams.events import MemoryCooldowns
from recognizer.streams.state import CLAIM_DAYS, OUTBOX_DAYS, StreamState


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / "streams.sqlite"


@pytest.fixture
def state(path):
    with_state = StreamState(path)
    yield with_state
    with_state.close()


def test_cooldowns_answer_like_the_memory_store(state):
    memory = MemoryCooldowns()
    checks = [("a", "cat", 0.0, 10), ("a", "cat", 5.0, 10), ("a", "cat", 10.0, 10), ("a", "dog", 11.0, 10)]
    checks += [("b", "cat", 11.0, 10), ("a", "cat", 19.9, 10), ("a", "cat", 3.0, 10), ("a", "cat", 4.0, 0)]
    for check in checks:
        assert state.allow(*check) == memory.allow(*check), check


def test_cooldowns_are_shared_by_workers_and_kept_across_restarts(path):
    first, second = StreamState(path), StreamState(path)
    assert first.allow("door", "person", 100.0, 60)
    assert not second.allow("door", "person", 130.0, 60)
    first.close(), second.close()
    reopened = StreamState(path)
    assert not reopened.allow("door", "person", 150.0, 60)
    assert reopened.allow("door", "person", 160.0, 60)
    reopened.close()


def test_claims_dedupe_across_workers_and_restarts(path):
    first, second = StreamState(path), StreamState(path)
    assert first.claim("e1")
    assert not second.claim("e1")
    assert second.claim("e2")
    assert not first.claim("e2")
    first.close(), second.close()
    restarted = StreamState(path)
    assert not restarted.claim("e1") and not restarted.claim("e2") and restarted.claim("e3")
    restarted.close()


def _claim_many(path, ids, results):
    state = StreamState(path)
    results.put([event_id for event_id in ids if state.claim(event_id)])
    state.close()


def test_claims_are_atomic_across_processes(path):
    StreamState(path).close()  # the schema first, so both children only race on the claims
    ids = [f"event-{n}" for n in range(200)]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_claim_many, args=(path, ids, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    won = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert sorted(won[0] + won[1]) == sorted(ids)  # each id claimed exactly once, by one of them


def test_old_claims_and_finished_rows_are_pruned_at_open(path):
    now = [1_000_000_000.0]
    state = StreamState(path, clock=lambda: now[0])
    state.claim("old")
    for n in range(3):
        state.enqueue(f"e{n}", "http://x/", b"{}")
    rows = state.outbox()
    state.delivered(rows[0].seq), state.refused(rows[1].seq, "HTTP 400")
    state.close()
    now[0] += max(CLAIM_DAYS, OUTBOX_DAYS) * 86400 + 1
    reopened = StreamState(path, clock=lambda: now[0])
    assert reopened.claim("old")  # forgotten: a month later the same id is new again
    assert [row.id for row in reopened.outbox()] == ["e2"]  # the pending row is never pruned
    reopened.close()


def test_the_outbox_keeps_order_and_state(state):
    assert state.enqueue("e1", "http://a/", b'{"n":1}')
    assert not state.enqueue("e1", "http://a/", b'{"n":1}')  # one row per event and URL
    state.enqueue("e2", "http://a/", b'{"n":2}')
    state.enqueue("e1", "http://b/", b'{"n":1}')
    assert state.pending() == 3 and state.pending("http://a/") == 2
    first = state.next_pending("http://a/")
    assert first is not None and (first.id, first.body, first.attempts) == ("e1", b'{"n":1}', 0)
    state.failed(first.seq, "refused", 123.0)
    again = state.next_pending("http://a/")
    assert (again.id, again.attempts, again.next_attempt_at, again.last_error) == ("e1", 1, 123.0, "refused")
    state.delivered(first.seq)
    state.refused(state.next_pending("http://a/").seq, "HTTP 404 Not Found")
    assert state.next_pending("http://a/") is None and state.pending() == 1
    done = {row.id: row for row in state.outbox("http://a/")}
    assert done["e1"].delivered_at is not None and done["e1"].last_error is None
    assert done["e2"].refused_at is not None and done["e2"].last_error == "HTTP 404 Not Found"


def test_one_sender_per_url_until_it_releases_or_its_lease_runs_out(path):
    now = [1000.0]
    first, second = StreamState(path, clock=lambda: now[0]), StreamState(path, clock=lambda: now[0])
    assert first.lease("http://a/", "one", 10)
    assert first.lease("http://a/", "one", 10)  # renewal
    assert not second.lease("http://a/", "two", 10)
    assert second.lease("http://b/", "two", 10)  # another URL, another lease
    now[0] += 10.5  # "one" died without releasing
    assert second.lease("http://a/", "two", 10)
    assert not first.lease("http://a/", "one", 10)
    second.release("http://a/", "two")
    assert first.lease("http://a/", "one", 10)
    first.close(), second.close()


def test_a_closed_state_says_so(path):
    state = StreamState(path)
    state.close()
    assert state.closed
    with pytest.raises(sqlite3.ProgrammingError):
        state.claim("x")


def test_the_file_is_in_wal_mode(state, path):
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

"""The jobs table as the queue, on SQLite and PostgreSQL: oldest first, one claim per job, counts
and the end recorded, a deleted job's runner told so."""

from __future__ import annotations

from datetime import timedelta

from recognizer.storage import jobs, migrate


def _job(job_id: str, minutes: int) -> dict:
    return {
        "id": job_id,
        "state": jobs.WAITING,
        "kind": "folder",
        "input": "photos",
        "folder": "/srv/photos",
        "options": {"top_k": 3, "groups": None},
        "client": "key:abc",
        "created_at": jobs.now() + timedelta(minutes=minutes),
        "total": 10,
    }


def test_the_queue_runs_oldest_first_and_each_job_is_claimed_once(engine):
    migrate.upgrade(engine)
    for job_id, minutes in (("b", 2), ("a", 1), ("c", 3)):
        jobs.add(engine, _job(job_id, minutes))
    assert jobs.active_ids(engine) == ["a", "b", "c"] and jobs.waiting(engine) == 3
    assert jobs.claim(engine, "a") and jobs.get(engine, "a")["state"] == jobs.RUNNING
    assert jobs.claim(engine, "a")  # a running job left by a dead runner may be claimed again...
    jobs.finish(engine, "a", jobs.DONE, None, {"total": 10, "done": 10, "reused": 4, "failed": 1}, 12.5)
    assert not jobs.claim(engine, "a")  # ...a finished one never
    done = jobs.get(engine, "a")
    assert (done["state"], done["done"], done["reused"], done["failed"], done["rate"]) == (
        "done",
        10,
        4,
        1,
        12.5,
    )
    assert done["finished_at"] >= done["started_at"] >= done["created_at"] - timedelta(minutes=1)
    assert done["finished_at"].tzinfo is not None and done["options"] == {"top_k": 3, "groups": None}
    assert [row["id"] for row in jobs.newest(engine, 10)] == ["c", "b", "a"]
    assert [row["id"] for row in jobs.newest(engine, 10, jobs.DONE)] == ["a"]


def test_progress_says_when_the_job_was_deleted(engine):
    migrate.upgrade(engine)
    jobs.add(engine, _job("x", 0))
    counts = {"total": 10, "done": 3, "reused": 0, "failed": 0}
    assert jobs.progress(engine, "x", counts, 2.0) and jobs.get(engine, "x")["done"] == 3
    assert jobs.remove(engine, "x") and not jobs.remove(engine, "x")
    assert not jobs.progress(engine, "x", counts, 2.0) and jobs.get(engine, "x") is None
    assert jobs.ids(engine) == set()

"""The ledger: what a resumed job reuses, what it must recompute, and one job per ledger."""

from __future__ import annotations

import pytest

from recognizer.errors import ConfigError
from recognizer.jobs.ledger import Ledger, fingerprint

OK = {"predictions": [{"index": 1}], "error": None}
FAILED = {"predictions": [], "error": {"type": "corrupt_image", "detail": "cut short"}}


def test_results_outlive_the_run_and_rows_follow_the_new_runs_order(tmp_path):
    path = tmp_path / "job.ledger"
    first = Ledger(path, "fp")
    first.start_run()
    first.add_input("a.jpg", "aaa")
    first.add_result("aaa", OK)
    first.add_input("b.jpg", "bbb")
    first.add_result("bbb", FAILED)
    first.close()

    again = Ledger(path, "fp")
    assert again.outcome("aaa") is True and again.outcome("bbb") is False and again.outcome("ccc") is None
    again.start_run()
    again.add_input("b-copy.jpg", "bbb")
    again.add_input("unreadable.jpg", None, {"error": {"type": "unreadable_file"}})
    again.add_input("a.jpg", "aaa")
    assert [(row["file"], row["error"]) for row in again.rows()] == [
        ("b-copy.jpg", FAILED["error"]),
        ("unreadable.jpg", {"type": "unreadable_file"}),
        ("a.jpg", None),
    ]
    again.close()


def test_another_fingerprint_reuses_nothing(tmp_path):
    path = tmp_path / "job.ledger"
    ledger = Ledger(path, fingerprint({"model": "a"}))
    ledger.add_result("aaa", OK)
    ledger.close()
    other = Ledger(path, fingerprint({"model": "b"}))
    assert other.outcome("aaa") is None
    other.close()
    assert fingerprint({"x": 1, "y": 2}) == fingerprint({"y": 2, "x": 1})


def test_a_second_job_on_the_same_ledger_is_refused_not_interleaved(tmp_path):
    path = tmp_path / "job.ledger"
    held = Ledger(path, "fp")
    with pytest.raises(ConfigError, match="another job is running"):
        Ledger(path, "fp")
    held.close()
    Ledger(path, "fp").close()

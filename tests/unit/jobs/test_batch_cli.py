"""`recognizer batch` as a user runs it: real bundled model, real photos, bad files, three formats."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from recognizer.cli import main
from recognizer.jobs import schema
from tests.helpers import jpeg_bytes

CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture
def folder(tmp_path, cat_photo, settings):  # `settings` isolates TORCH_HOME and the artifact cache
    photos = tmp_path / "photos"
    (photos / "nested").mkdir(parents=True)
    whole = jpeg_bytes(cat_photo)
    (photos / "cat.jpg").write_bytes(whole)
    (photos / "nested" / "cut.jpg").write_bytes(whole[: len(whole) // 3])
    (photos / "report.jpg").write_bytes(b"%PDF-1.4\n%%EOF\n")
    (photos / "empty.png").write_bytes(b"")
    return photos


def batch(*args: str):
    return CliRunner().invoke(main, ["batch", *args])


def read(path) -> list[dict]:
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text())))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return pq.read_table(path).to_pylist()


def test_bad_files_become_rows_with_a_reason_and_the_exit_code_says_so(folder, tmp_path):
    out = tmp_path / "r.csv"
    result = batch(str(folder), "--out", str(out))
    assert result.exit_code == 1, result.output
    rows = read(out)
    assert list(rows[0]) == list(schema.COLUMNS)
    by_file = {row["file"].removeprefix(f"{folder}/"): row for row in rows}
    assert list(by_file) == ["cat.jpg", "empty.png", "nested/cut.jpg", "report.jpg"]
    assert by_file["cat.jpg"]["top_label"] in CAT_LABELS and not by_file["cat.jpg"]["error_code"]
    assert by_file["cat.jpg"]["width"] == "451" and len(by_file["cat.jpg"]["sha256"]) == 64
    codes = {name: row["error_code"] for name, row in by_file.items() if name != "cat.jpg"}
    assert codes == {
        "empty.png": "empty_image",
        "nested/cut.jpg": "corrupt_image",
        "report.jpg": "not_an_image",
    }
    assert "4 input(s), 1 recognised, 3 failed" in result.stderr
    assert "Traceback" not in result.output


def test_the_three_formats_hold_the_same_rows(folder, tmp_path):
    for suffix in ("csv", "jsonl", "parquet"):
        batch(str(folder), "--out", str(tmp_path / f"r.{suffix}"), "--quiet", "-k", "3")
    as_csv, as_jsonl, as_parquet = (read(tmp_path / f"r.{s}") for s in ("csv", "jsonl", "parquet"))
    for flat_csv, nested, flat in zip(as_csv, as_jsonl, as_parquet, strict=True):
        assert flat_csv["file"] == nested["file"] == flat["file"]
        assert json.loads(flat_csv["predictions"]) == nested["predictions"] == flat["predictions"]
        assert (nested["error"] or {}).get("type") == flat["error_code"] == (flat_csv["error_code"] or None)
        if nested["predictions"]:
            assert len(nested["predictions"]) == 3 and flat["top_label"] == nested["predictions"][0]["label"]


def test_a_second_run_reuses_the_ledger_and_other_settings_recompute(folder, tmp_path):
    out = tmp_path / "r.jsonl"
    batch(str(folder), "--out", str(out))
    before = out.read_bytes()
    again = batch(str(folder), "--out", str(out))
    assert "(4 from an earlier run)" in again.stderr and out.read_bytes() == before
    other = batch(str(folder), "--out", str(out), "--top-k", "2")
    assert "(0 from an earlier run)" in other.stderr
    assert all(len(row["predictions"]) in (0, 2) for row in read(out))
    fresh = batch(str(folder), "--out", str(out), "--top-k", "2", "--fresh")
    assert "(0 from an earlier run)" in fresh.stderr
    assert not list(tmp_path.glob(".*partial"))


def test_usage_errors_are_one_line_and_exit_2(folder, tmp_path):
    for args, message in (
        ([str(folder), "--out", str(tmp_path / "r.xlsx")], "use .csv, .jsonl or .parquet"),
        ([str(tmp_path / "missing"), "--out", str(tmp_path / "r.csv")], "no such file or folder"),
    ):
        result = batch(*args)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.csv").exists()


def test_quiet_prints_nothing_but_a_failure_line(folder, tmp_path):
    result = batch(str(folder), "--out", str(tmp_path / "r.csv"), "--quiet")
    assert result.stdout == "" and result.stderr.strip().splitlines() == [
        f"recognizer: 3 input(s) failed; their rows in {tmp_path / 'r.csv'} say why"
    ]

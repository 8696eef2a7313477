"""The Ray Data executor's parts that need no cluster: its actor called directly, and the refusals
that come before Ray starts (`tests/e2e/test_batch_ray.py` runs the whole job on a local Ray)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from recognizer.cli import main
from recognizer.errors import ConfigError
from recognizer.jobs import inputs
from recognizer.scaleout import data
from tests.helpers import fake_loader, jpeg_bytes


@pytest.fixture(autouse=True)
def _fake_model(monkeypatch):
    monkeypatch.setattr(data, "load_model", fake_loader())


def test_the_actor_answers_one_row_per_path_in_order_and_bad_files_are_rows(settings, tmp_path, cat_photo):
    cat = jpeg_bytes(cat_photo)
    (tmp_path / "cat.jpg").write_bytes(cat)
    (tmp_path / "big.jpg").write_bytes(cat + b"\0" * 100)
    (tmp_path / "cut.jpg").write_bytes(cat[:500])
    names = [str(tmp_path / name) for name in ("cat.jpg", "big.jpg", "missing.jpg", "cut.jpg")]
    actor = data.Recognizer(
        settings.with_flags(max_image_bytes=len(cat) + 50).model_dump(), "efficientnet_lite0"
    )
    answer = actor({"file": np.array(names, dtype=object)})
    assert answer["file"] == names
    rows = [json.loads(text) for text in answer["row"]]
    assert [row["error"] and row["error"]["type"] for row in rows] == [
        None,
        "image_too_large",
        "unreadable_file",
        "corrupt_image",
    ]
    assert rows[0]["sha256"] and rows[0]["predictions"] and rows[0]["engine"] == "fake"
    assert rows[1]["sha256"] is None and "RECOGNIZER_MAX_IMAGE_BYTES" in rows[1]["error"]["detail"]


def test_archives_are_refused_before_ray_starts(settings, tmp_path):
    (tmp_path / "photos.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(ConfigError, match="not archives"):
        data.prepare(settings, inputs.resolve([str(tmp_path / "photos.zip")]))


def test_an_address_that_does_not_answer_is_one_line_and_exit_2(settings, tmp_path, cat_photo):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'recognizer[ray]'")
    (tmp_path / "cat.jpg").write_bytes(jpeg_bytes(cat_photo))
    out = tmp_path / "r.csv"
    args = ["batch", str(tmp_path), "--out", str(out), "--ray", "127.0.0.1:1", "--fresh"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "--ledger and --fresh are ignored" in result.stderr
    assert "nothing answers at the Ray address '127.0.0.1:1'" in result.stderr
    assert not out.exists()

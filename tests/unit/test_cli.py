"""The `recognizer` command as a user runs it: real bundled model, real photos, real exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from recognizer.cli import main
from recognizer.storage import database, export, migrate
from tests.helpers import jpeg_bytes

CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture
def runner(settings):  # `settings` isolates TORCH_HOME and the artifact cache
    return CliRunner()


@pytest.fixture
def photos(tmp_path, cat_photo):
    cat = tmp_path / "cat.jpg"
    cat.write_bytes(jpeg_bytes(cat_photo))
    fake = tmp_path / "report.jpg"
    fake.write_bytes(b"%PDF-1.4\n%%EOF\n")
    return cat, fake


def test_predict_prints_a_table_naming_model_and_engine(runner, photos):
    result = runner.invoke(main, ["predict", str(photos[0]), "--top-k", "3"])
    assert result.exit_code == 0, result.output
    assert "model efficientnet_lite0 · engine onnxruntime" in result.stdout
    assert any(label in result.stdout.split("cat.jpg", 1)[1].splitlines()[1] for label in CAT_LABELS)
    assert "resnet18 weights not found" in result.stderr


def test_predict_json_has_the_documented_shape(runner, photos):
    result = runner.invoke(main, ["predict", str(photos[0]), "--json", "-k", "2", "--engine", "torch"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model"] == "efficientnet_lite0" and body["engine"] == "torch"
    assert body["file"].endswith("cat.jpg") and len(body["predictions"]) == 2
    assert set(body["predictions"][0]) == {"index", "wnid", "label", "score"}
    assert body["predictions"][0]["label"] in CAT_LABELS


def test_a_bad_file_is_one_line_on_stderr_and_the_rest_still_run(runner, photos):
    cat, fake = photos
    result = runner.invoke(main, ["predict", str(fake), str(cat), "/no/such.jpg", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["file"].endswith("cat.jpg")
    errors = [line for line in result.stderr.splitlines() if "note:" not in line]
    assert len(errors) == 2 and "Traceback" not in result.stderr
    assert "report.jpg: the data is not an image" in errors[1] or "report.jpg" in errors[0]


def test_a_folder_is_expanded_to_its_images(runner, photos, tmp_path):
    result = runner.invoke(main, ["predict", str(tmp_path), "--json"])
    assert result.exit_code == 1  # report.jpg is a PDF
    assert len(result.stdout.splitlines()) == 1


def test_resnet18_with_any_state_dict_of_the_right_shape(runner, photos, resnet18_random_weights):
    args = ["predict", str(photos[0]), "--model", "resnet18", "--weights", str(resnet18_random_weights)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "model resnet18" in result.stdout and "custom weights resnet18-random-seed0.pth" in result.stdout


def test_weights_of_the_wrong_architecture_are_refused_clearly(runner, photos, resnet18_random_weights):
    args = [
        "predict",
        str(photos[0]),
        "--model",
        "mobilenet_v3_small",
        "--weights",
        str(resnet18_random_weights),
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert "does not fit mobilenet_v3_small" in result.stderr and "Traceback" not in result.stderr


def test_unknown_model_and_bad_option_values_exit_2(runner, photos):
    assert "unknown model 'vgg'" in runner.invoke(main, ["predict", str(photos[0]), "-m", "vgg"]).stderr
    result = runner.invoke(main, ["predict", str(photos[0]), "--top-k", "0"])
    assert result.exit_code == 2 and "--top-k / RECOGNIZER_TOP_K" in result.stderr


def test_models_lists_offline_availability(runner):
    rows = json.loads(runner.invoke(main, ["models", "--json"]).stdout)
    offline = {row["name"]: row["available_offline"] for row in rows}
    assert offline == {
        "resnet18": False,
        "resnet50": False,
        "mobilenet_v3_large": False,
        "mobilenet_v3_small": False,
        "efficientnet_lite0": True,
    }


def test_weights_import_refuses_the_wrong_file_and_path_finds_bundled(runner, tmp_path):
    wrong = tmp_path / "resnet18.pth"
    wrong.write_bytes(b"not resnet18")
    result = runner.invoke(main, ["weights", "import", "resnet18", str(wrong)])
    assert result.exit_code == 2 and "SHA-256" in result.stderr
    assert runner.invoke(main, ["weights", "path", "efficientnet_lite0"]).stdout.strip().endswith(".pth")


def test_installed_console_script_runs_offline(settings, photos):
    """The README quick start: the `recognizer` executable on a real photo."""
    script = os.path.join(os.path.dirname(sys.executable), "recognizer")
    done = subprocess.run(
        [script, "predict", str(photos[0]), "-k", "1", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"][0]["label"] in CAT_LABELS


def test_top_k_from_the_environment_is_honoured(runner, photos, monkeypatch):
    monkeypatch.setenv("RECOGNIZER_TOP_K", "2")
    result = runner.invoke(main, ["predict", str(photos[0]), "--json"])
    assert len(json.loads(result.stdout)["predictions"]) == 2


def test_custom_labels_replace_the_names_but_keep_index_and_wnid(runner, photos, tmp_path):
    from recognizer.models.labels import imagenet1k_labels

    german = {"281": "Getigerte Katze", "282": "Tigerkatze", "285": "Ägyptische Katze"}
    names = {str(c.index): german.get(str(c.index), f"Klasse {c.index}") for c in imagenet1k_labels()}
    labels = tmp_path / "de.json"
    labels.write_text(json.dumps(names, ensure_ascii=False), "utf-8")
    result = runner.invoke(main, ["predict", str(photos[0]), "--json", "--labels", str(labels)])
    top = json.loads(result.stdout)["predictions"][0]
    assert (
        top["label"] in german.values() and top["index"] in {281, 282, 285} and top["wnid"].startswith("n021")
    )


def test_a_bad_labels_file_is_refused_in_one_line(runner, photos, tmp_path):
    labels = tmp_path / "short.csv"
    labels.write_text("0,Schleie\n1,Goldfisch\n", "utf-8")
    result = runner.invoke(main, ["predict", str(photos[0]), "--labels", str(labels)])
    assert result.exit_code == 2 and "missing 998 of 1000 classes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_groups_say_there_is_a_cat(runner, photos, tmp_path):
    result = runner.invoke(main, ["predict", str(photos[0]), "--json", "--groups"])
    groups = json.loads(result.stdout)["groups"]
    assert groups[0]["name"] == "cat" and groups[0]["score"] > 0.5
    own = tmp_path / "groups.json"
    own.write_text(json.dumps({"pets": ["n02123045", 282, "285", 207], "other": [0]}))
    result = runner.invoke(main, ["predict", str(photos[0]), "--json", f"--groups={own}"])
    assert [g["name"] for g in json.loads(result.stdout)["groups"]] == ["pets", "other"]


def test_an_empty_folder_is_reported_not_silently_accepted(runner, tmp_path, settings):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(main, ["predict", str(empty)])
    assert result.exit_code == 1 and "no images in this folder" in result.stderr


def test_db_upgrade_creates_the_history_database_and_current_checks_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOGNIZER_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(main, ["db", "current"]).exit_code == 1  # no schema yet
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0 and f"schema at revision {migrate.head()}" in result.stdout
    assert (tmp_path / "data" / "recognizer.db").is_file()
    assert runner.invoke(main, ["db", "current"]).exit_code == 0


def test_predict_records_only_when_asked_and_history_export_reads_it_back(
    runner, photos, tmp_path, monkeypatch
):
    monkeypatch.setenv("RECOGNIZER_DATA_DIR", str(tmp_path / "data"))
    assert runner.invoke(main, ["predict", str(photos[0])]).exit_code == 0
    assert not (tmp_path / "data" / "recognizer.db").exists()  # not asked: nothing recorded
    result = runner.invoke(main, ["predict", *map(str, photos), "--record"])
    assert result.exit_code == 1 and "2 result(s) recorded" in result.stderr  # the PDF is a row too
    out = tmp_path / "history.csv"
    exported = runner.invoke(main, ["history", "export", "--format", "csv", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    rows = sorted(csv.DictReader(io.StringIO(out.read_text())), key=lambda row: row["name"])
    assert [(row["name"].rsplit("/", 1)[-1], row["source"]) for row in rows] == [
        ("cat.jpg", "cli"),
        ("report.jpg", "cli"),
    ]
    assert rows[0]["top_label"] in CAT_LABELS and rows[1]["error_code"] == "not_an_image"
    jsonl = runner.invoke(main, ["history", "export", "--format", "jsonl", "--errors"])
    assert [json.loads(line)["error"]["type"] for line in jsonl.stdout.splitlines()] == ["not_an_image"]
    later = runner.invoke(main, ["history", "export", "--since", "2999-01-01"])
    assert later.exit_code == 0 and later.stdout.splitlines() == [",".join(export.COLUMNS)]
    pruned = runner.invoke(main, ["history", "prune", "--max-rows", "1"])
    assert pruned.exit_code == 0 and "1 row(s) deleted" in pruned.stdout


def test_serve_refuses_a_stale_history_schema_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOGNIZER_DATA_DIR", str(tmp_path / "data"))
    migrate.upgrade(database.make_engine(f"sqlite:///{tmp_path / 'data' / 'recognizer.db'}"), "0001")
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 2 and "run `recognizer db upgrade`" in result.stderr
    assert "Traceback" not in result.output


def test_serve_names_an_unreachable_database_in_one_line(monkeypatch):
    monkeypatch.setenv("RECOGNIZER_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 2 and "cannot open the history database" in result.stderr
    assert "Traceback" not in result.output

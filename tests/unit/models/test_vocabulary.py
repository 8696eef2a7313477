"""Custom vocabularies: a user renames the 1000 classes, e.g. into German, without touching the model."""

from __future__ import annotations

import json
from pathlib import Path

from recognizer.models.labels import ClassLabel, imagenet1k_labels
from recognizer.models.vocabulary import load_labels
from tests.helpers import refusal as _refusal

BASE = imagenet1k_labels()
GERMAN = {0: "Schleie", 1: "Goldfisch", 207: "Golden Retriever", 281: "Getigerte Katze", 954: "Banane"}


def german_names() -> dict[int, str]:
    """Every class named; a few in German, including non-ASCII text, the rest as they were."""
    names = {c.index: c.label for c in BASE}
    names.update(GERMAN)
    names[963] = "Pizza (große)"
    return names


def write_json(tmp_path: Path, data: object, name: str = "labels.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    return _refusal(load_labels, path, BASE)


# --- formats that work -----------------------------------------------------------------------------


def test_a_german_labels_file_keyed_by_index_replaces_names_but_keeps_index_and_wnid(tmp_path):
    labels = load_labels(write_json(tmp_path, {str(i): n for i, n in german_names().items()}), BASE)

    assert len(labels) == 1000
    assert labels[954] == ClassLabel(954, "n07753592", "Banane")
    assert labels[281] == ClassLabel(281, "n02123045", "Getigerte Katze")
    assert labels[963].label == "Pizza (große)"
    assert labels[500] == BASE[500]
    assert [(c.index, c.wnid) for c in labels] == [(c.index, c.wnid) for c in BASE]


def test_a_file_keyed_by_wnid_works(tmp_path):
    names = german_names()
    labels = load_labels(write_json(tmp_path, {c.wnid: names[c.index] for c in BASE}), BASE)

    assert labels[0] == ClassLabel(0, "n01440764", "Schleie")
    assert labels[207].label == "Golden Retriever"


def test_index_and_wnid_keys_can_be_mixed(tmp_path):
    data = {
        (c.wnid if c.index % 2 else str(c.index)): name
        for c, name in zip(BASE, german_names().values(), strict=True)
    }
    labels = load_labels(write_json(tmp_path, data), BASE)

    assert labels[1].label == "Goldfisch" and labels[0].label == "Schleie"


def test_the_standard_imagenet_class_index_json_works(class_index_json):
    labels = load_labels(class_index_json, BASE)

    assert labels[0] == ClassLabel(0, "n01440764", "tench")
    assert labels[285].label == "British_short_cat"  # that file's own name for class 285
    assert [c.wnid for c in labels] == [c.wnid for c in BASE]


def test_class_index_format_with_a_wnid_for_the_wrong_class_is_refused(tmp_path):
    data = {str(c.index): [c.wnid, c.label] for c in BASE}
    data["5"] = ["n01440764", "tench"]  # class 0's wnid under index 5: a file for another class order

    message = refusal(write_json(tmp_path, data))

    assert "'5'" in message and "n01440764" in message and "class order" in message


def test_a_list_of_1000_names_in_index_order_works(tmp_path):
    labels = load_labels(write_json(tmp_path, list(german_names().values()), "imagenet_classes.json"), BASE)

    assert labels[1] == ClassLabel(1, "n01443537", "Goldfisch")
    assert labels[999] == BASE[999]


def test_a_list_of_the_wrong_length_is_refused(tmp_path):
    message = refusal(write_json(tmp_path, list(german_names().values())[:999]))

    assert "999 names" in message and "1000 classes" in message


def test_csv_with_a_header_row_works(tmp_path):
    path = tmp_path / "labels.csv"
    rows = ["index,label"] + [f'{i},"{name}"' for i, name in german_names().items()]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    labels = load_labels(path, BASE)

    assert labels[954].label == "Banane" and labels[954].wnid == "n07753592"


def test_csv_without_header_keyed_by_wnid_with_a_bom_and_commas_in_names_works(tmp_path):
    path = tmp_path / "LABELS.CSV"
    rows = [f'{c.wnid},"{name}"' for c, name in zip(BASE, german_names().values(), strict=True)]
    rows[0] = 'n01440764,"Schleie, ein Fisch"'
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(rows) + "\r\n").encode("utf-8"))

    labels = load_labels(path, BASE)

    assert labels[0] == ClassLabel(0, "n01440764", "Schleie, ein Fisch")
    assert labels[281].label == "Getigerte Katze"


def test_a_json_file_with_a_bom_works(tmp_path):
    path = tmp_path / "labels.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(list(german_names().values())).encode("utf-8"))

    assert load_labels(path, BASE)[954].label == "Banane"


# --- refusals --------------------------------------------------------------------------------------


def test_a_file_that_misses_classes_says_how_many_and_which(tmp_path):
    names = german_names()
    for index in (17, 42, 99):
        del names[index]

    message = refusal(write_json(tmp_path, {str(i): n for i, n in names.items()}))

    assert "missing 3 of 1000 classes" in message
    assert "17 (n01580077 jay)" in message and "42 (" in message and "99 (" in message


def test_many_missing_classes_are_counted_not_all_listed(tmp_path):
    message = refusal(write_json(tmp_path, {"0": "Schleie"}))

    assert "missing 999 of 1000 classes" in message and "and 996 more" in message


def test_an_index_and_a_wnid_for_the_same_class_is_a_duplicate(tmp_path):
    data = {str(i): n for i, n in german_names().items()}
    data["n02099601"] = "Goldie"  # wnid of class 207, already given as "207"

    message = refusal(write_json(tmp_path, data))

    assert "207 (n02099601 golden retriever) twice" in message
    assert "'207'" in message and "'n02099601'" in message


def test_a_repeated_json_key_is_a_duplicate_not_silently_overwritten(tmp_path):
    body = ", ".join(f'"{i}": {json.dumps(n)}' for i, n in german_names().items())
    path = tmp_path / "labels.json"
    path.write_text('{"954": "Banane", ' + body + "}", encoding="utf-8")

    assert "954 (n07753592 banana) twice" in refusal(path)


def test_a_repeated_csv_key_is_a_duplicate(tmp_path):
    path = tmp_path / "labels.csv"
    rows = [f'{i},"{name}"' for i, name in german_names().items()] + ["1,Karausche"]
    path.write_text("\n".join(rows), encoding="utf-8")

    assert "1 (n01443537 goldfish) twice" in refusal(path)


def test_unknown_keys_are_named(tmp_path):
    data = {str(i): n for i, n in german_names().items()}
    data.update({"1000": "zu viel", "n99999999": "erfunden", "dog": "Hund"})

    message = refusal(write_json(tmp_path, data))

    assert "3 unknown key(s)" in message
    assert "'1000'" in message and "'n99999999'" in message and "'dog'" in message


def test_a_file_that_is_not_utf8_is_refused_with_the_byte_offset(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("0,Größe\n".encode("latin-1"))

    message = refusal(path)

    assert "not UTF-8" in message and "0xf6" in message and "offset 4" in message


def test_invalid_json_says_where(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('{\n  "0": "Schleie",\n  "1": "Goldfisch"\n  "2": "Hai"\n}\n', encoding="utf-8")

    message = refusal(path)

    assert "not valid JSON" in message and "line 4 column 3" in message


def test_a_wrong_suffix_names_the_accepted_ones(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("tench\n", encoding="utf-8")

    message = refusal(path)

    assert "'.txt'" in message and ".json or .csv" in message


def test_a_missing_file_is_refused(tmp_path):
    assert "does not exist" in refusal(tmp_path / "nope.json")


def test_an_unreadable_path_is_refused(tmp_path):
    directory = tmp_path / "labels.json"
    directory.mkdir()

    assert "cannot read" in refusal(directory)


def test_an_empty_name_is_refused(tmp_path):
    data = {str(i): n for i, n in german_names().items()}
    data["954"] = "   "

    message = refusal(write_json(tmp_path, data))

    assert "954 (n07753592 banana) is empty" in message


def test_a_value_that_is_not_a_name_is_refused(tmp_path):
    data = {str(i): n for i, n in german_names().items()}
    data["954"] = 7

    assert "'954'" in refusal(write_json(tmp_path, data))


def test_a_csv_row_with_three_cells_says_which_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("key,name\n0,Schleie\n1,Gold,fisch\n", encoding="utf-8")

    message = refusal(path)

    assert "line 3 has 3 cells" in message and "double quotes" in message


def test_a_typo_in_the_first_csv_row_is_an_unknown_key_not_a_header(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("n99999999,Schleie\n" + "\n".join(f"{i},x" for i in range(1, 1000)), encoding="utf-8")

    assert "'n99999999'" in refusal(path)

"""Label groups: "is there a dog?" as the summed probability of every dog class."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from recognizer.errors import ConfigError
from recognizer.models.labels import ClassLabel, imagenet1k_labels
from recognizer.models.vocabulary import GroupScore, LabelGroups, builtin_groups, load_groups, load_labels
from tests.helpers import refusal as _refusal

LABELS = imagenet1k_labels()
REQUIRED = (
    "dog",
    "cat",
    "bird",
    "fish",
    "insect",
    "vehicle",
    "food",
    "fruit",
    "musical_instrument",
    "sports_equipment",
)

# Hand-checked against imagenet1k_labels.json: (group, class index, readable name).
MEMBERS = [
    ("dog", 151, "Chihuahua"),
    ("dog", 207, "golden retriever"),
    ("dog", 268, "Mexican hairless"),
    ("cat", 281, "tabby"),
    ("cat", 282, "tiger cat"),
    ("cat", 285, "Egyptian cat"),
    ("bird", 7, "cock"),
    ("bird", 13, "junco"),
    ("bird", 130, "flamingo"),
    ("fish", 0, "tench"),
    ("fish", 1, "goldfish"),
    ("fish", 391, "coho"),
    ("fish", 2, "great white shark"),
    ("insect", 309, "bee"),
    ("insect", 301, "ladybug"),
    ("insect", 323, "monarch"),
    ("vehicle", 817, "sports car"),
    ("vehicle", 656, "minivan"),
    ("vehicle", 867, "trailer truck"),
    ("vehicle", 671, "mountain bike"),
    ("vehicle", 404, "airliner"),
    ("vehicle", 779, "school bus"),
    ("vehicle", 466, "bullet train"),
    ("vehicle", 814, "speedboat"),
    ("vehicle", 665, "moped"),
    ("food", 963, "pizza"),
    ("food", 933, "cheeseburger"),
    ("food", 937, "broccoli"),
    ("food", 954, "banana"),
    ("fruit", 954, "banana"),
    ("fruit", 949, "strawberry"),
    ("fruit", 950, "orange"),
    ("musical_instrument", 402, "acoustic guitar"),
    ("musical_instrument", 579, "grand piano"),
    ("musical_instrument", 889, "violin"),
    ("sports_equipment", 768, "rugby ball"),
    ("sports_equipment", 805, "soccer ball"),
    ("sports_equipment", 852, "tennis ball"),
]
NON_MEMBERS = [
    ("dog", 281, "tabby"),
    ("dog", 291, "lion"),
    ("dog", 269, "timber wolf"),
    ("cat", 291, "lion"),
    ("cat", 286, "cougar"),
    ("cat", 207, "golden retriever"),
    ("bird", 0, "tench"),
    ("bird", 309, "bee"),
    ("bird", 404, "airliner"),
    ("fish", 107, "jellyfish"),
    ("fish", 327, "starfish"),
    ("fish", 124, "crayfish"),
    ("insect", 72, "black and gold garden spider"),
    ("insect", 78, "tick"),
    ("insect", 79, "centipede"),
    ("vehicle", 417, "balloon"),  # WordNet calls it an aircraft; the photos are party balloons
    ("vehicle", 791, "shopping cart"),
    ("vehicle", 479, "car wheel"),
    ("food", 922, "menu"),
    ("food", 958, "hay"),
    ("food", 967, "espresso"),  # a drink, in the drink group
    ("fruit", 988, "acorn"),
    ("fruit", 990, "buckeye"),
    ("fruit", 937, "broccoli"),
    ("musical_instrument", 542, "drumstick"),
    ("musical_instrument", 714, "pick"),
    ("musical_instrument", 409, "analog clock"),
    ("sports_equipment", 575, "golfcart"),  # a vehicle
    ("sports_equipment", 433, "bathing cap"),
    ("sports_equipment", 620, "laptop"),
]


def one_hot(*indices: int) -> np.ndarray:
    probs = np.zeros((len(indices), 1000), dtype=np.float32)
    probs[np.arange(len(indices)), indices] = 1.0
    return probs


def as_dict(ranked: list[GroupScore]) -> dict[str, float]:
    return {g.name: g.score for g in ranked}


# --- the built-in groups ---------------------------------------------------------------------------


def test_the_required_groups_are_built_in():
    names = builtin_groups(LABELS).names

    assert set(REQUIRED) <= set(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("group", "index", "name"), MEMBERS, ids=[f"{g}-{n}" for g, _, n in MEMBERS])
def test_known_members(group, index, name):
    assert LABELS[index].label == name
    assert index in builtin_groups(LABELS).describe()[group]


@pytest.mark.parametrize(
    ("group", "index", "name"), NON_MEMBERS, ids=[f"{g}-not-{n}" for g, _, n in NON_MEMBERS]
)
def test_known_non_members(group, index, name):
    assert LABELS[index].label == name
    assert index not in builtin_groups(LABELS).describe()[group]


def test_every_dog_breed_and_no_other_class_is_a_dog():
    assert builtin_groups(LABELS).describe()["dog"] == list(range(151, 269))


def test_the_shipped_file_explains_each_group_and_lists_wnids_in_class_order():
    data = json.loads(resources.files("recognizer.models").joinpath("label_groups.json").read_text("utf-8"))
    index_of = {c.wnid: c.index for c in LABELS}

    for name, wnids in data["groups"].items():
        assert wnids, name
        assert [index_of[w] for w in wnids] == sorted(index_of[w] for w in wnids), name
        assert data["_source"]["groups"][name]["members"] == len(wnids)
    assert "dog.n.01" in str(data["_source"]["groups"]["dog"]["hyponyms_of"])


def test_builtin_groups_follow_a_custom_labels_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps([f"Klasse {i}" for i in range(1000)]), encoding="utf-8")

    german = builtin_groups(load_labels(path, LABELS))

    assert german.describe() == builtin_groups(LABELS).describe()


def test_builtin_groups_refuse_a_label_set_they_do_not_describe():
    other = tuple(ClassLabel(i, f"n9{i:07d}", f"thing {i}") for i in range(10))

    with pytest.raises(ConfigError, match="label groups file"):
        builtin_groups(other)


# --- scores ----------------------------------------------------------------------------------------


def test_all_mass_on_a_golden_retriever_makes_dog_certain_and_first():
    [ranked] = builtin_groups(LABELS).scores(one_hot(207))

    assert ranked[0] == GroupScore("dog", 1.0)
    assert ranked[0].as_dict() == {"name": "dog", "score": 1.0}
    assert all(g.score == 0.0 for g in ranked[1:])
    assert [g.name for g in ranked[1:]] == sorted(g.name for g in ranked[1:])  # ties by name


def test_scores_sum_each_groups_classes_and_sort_best_first():
    probs = np.zeros((1, 1000))
    probs[0, [281, 282]] = 0.3, 0.2  # tabby, tiger cat
    probs[0, [207, 151]] = 0.1, 0.05  # golden retriever, Chihuahua
    probs[0, 954] = 0.35  # banana: food and fruit

    [ranked] = builtin_groups(LABELS).scores(probs)
    scores = as_dict(ranked)

    assert scores["cat"] == pytest.approx(0.5)
    assert scores["dog"] == pytest.approx(0.15)
    assert scores["fruit"] == pytest.approx(0.35) and scores["food"] == pytest.approx(0.35)
    assert [g.name for g in ranked[:4]] == ["cat", "food", "fruit", "dog"]
    assert set(scores) == set(builtin_groups(LABELS).names)


def test_each_row_of_a_batch_is_scored_on_its_own():
    rows = builtin_groups(LABELS).scores(one_hot(207, 0, 404))

    assert [r[0].name for r in rows] == ["dog", "fish", "vehicle"]


def test_a_real_softmax_never_gives_a_score_above_one():
    logits = np.random.default_rng(0).normal(size=(4, 1000)).astype(np.float32)
    logits[:, 151:269] += 8.0  # nearly all mass on dogs
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    for ranked in builtin_groups(LABELS).scores(probs):
        assert ranked[0].name == "dog"
        assert all(0.0 <= g.score <= 1.0 for g in ranked)


def test_scores_refuse_probabilities_of_the_wrong_shape():
    with pytest.raises(ValueError, match="1000"):
        builtin_groups(LABELS).scores(np.zeros((1, 10)))


def test_groups_cannot_be_changed_after_construction():
    groups = builtin_groups(LABELS)

    with pytest.raises(ValueError):
        groups.members[0, 0] = True


def test_label_groups_can_be_built_directly():
    groups = LabelGroups(("even", "small"), np.array([[True, False, True], [True, True, False]]))

    assert groups.describe() == {"even": [0, 2], "small": [0, 1]}
    assert as_dict(groups.scores(np.array([[0.5, 0.3, 0.2]]))[0]) == pytest.approx(
        {"even": 0.7, "small": 0.8}
    )


# --- user files ------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    return _refusal(load_groups, path, LABELS)


def test_a_json_groups_file_replaces_the_builtin_groups(tmp_path):
    path = write(
        tmp_path, "groups.json", json.dumps({"pets": [207, "281", "n02123159"], "retriever": [207, 208]})
    )

    groups = load_groups(path, LABELS)

    assert groups.names == ("pets", "retriever")  # no dog, cat, ... any more
    assert groups.describe() == {"pets": [207, 281, 282], "retriever": [207, 208]}
    assert as_dict(groups.scores(one_hot(207))[0]) == {"pets": 1.0, "retriever": 1.0}


def test_a_csv_groups_file_with_a_header_works(tmp_path):
    path = write(tmp_path, "groups.csv", "group,key\npets,207\npets,n02123045\nbirds,7\n")

    assert load_groups(path, LABELS).describe() == {"pets": [207, 281], "birds": [7]}


def test_a_csv_groups_file_without_a_header_works(tmp_path):
    path = write(tmp_path, "groups.csv", "pets,207\r\n\r\npets,281\r\n")

    assert load_groups(path, LABELS).describe() == {"pets": [207, 281]}


def test_unknown_keys_are_named_with_their_group(tmp_path):
    path = write(tmp_path, "groups.json", json.dumps({"pets": [207, 1000, "n99999999"], "x": [True]}))

    message = refusal(path)

    assert "3 unknown key(s)" in message
    assert "pets: 1000" in message and "pets: 'n99999999'" in message and "x: True" in message


def test_an_empty_group_is_refused(tmp_path):
    assert "'pets' is []" in refusal(write(tmp_path, "groups.json", '{"pets": []}'))


def test_a_class_twice_in_one_group_is_refused(tmp_path):
    message = refusal(write(tmp_path, "groups.json", json.dumps({"pets": [207, "n02099601"]})))

    assert "'pets' lists class 207 (n02099601 golden retriever) twice" in message


def test_an_empty_group_name_is_refused(tmp_path):
    assert "empty name (line 2)" in refusal(write(tmp_path, "groups.csv", "group,key\n ,207\n"))
    assert "empty name" in refusal(write(tmp_path, "groups.json", '{"": [207]}'))


def test_a_group_defined_twice_in_json_is_refused(tmp_path):
    assert "'pets' twice" in refusal(write(tmp_path, "groups.json", '{"pets": [207], "pets": [281]}'))


def test_a_file_without_groups_is_refused(tmp_path):
    assert "no groups" in refusal(write(tmp_path, "groups.json", "{}"))
    assert "no groups" in refusal(write(tmp_path, "groups.csv", "group,key\n"))


def test_a_groups_file_that_is_not_an_object_is_refused(tmp_path):
    assert "JSON list" in refusal(write(tmp_path, "groups.json", "[207]"))


def test_groups_file_format_errors_are_refused(tmp_path):
    assert "line 1 column 15" in refusal(write(tmp_path, "groups.json", '{"pets": [207,]}'))
    assert "not UTF-8" in refusal(write(tmp_path, "groups.csv", "haustier,207\ngroß,281\n".encode("latin-1")))
    assert ".json or .csv" in refusal(write(tmp_path, "groups.yaml", "pets: [207]\n"))
    assert "does not exist" in refusal(tmp_path / "missing.csv")

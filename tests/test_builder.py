"""The dataset builder: loose photos class by class → a normal dataset; adding photos later."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from builders import image_bytes, tree_digest, truncated_jpeg, write

from catdog import policy as hosting
from catdog.cli import main
from catdog.data import photo_split
from catdog.data.builder import add_photos, build_dataset, builder_made, version_name
from catdog.data.datasets import MANIFEST_NAME, SPLITS, DatasetError, list_images, scan_dataset
from catdog.data.names import check_class_names
from catdog.data.paths import datasets_dir, in_workspace, new_workspace_token
from catdog.policy import HostedLimitError
from catdog.quota import folder_size


def photos(kind: int, n: int, prefix: str = "IMG_", size: int = 40) -> list[tuple[str, bytes]]:
    """``n`` distinct tiny photos of class ``kind`` as (name, bytes), as uploads give them."""
    return [(f"{prefix}{i}.jpg", image_bytes(kind, size, seed=100 * kind + i)) for i in range(n)]


def counts(root: Path) -> dict[str, dict[str, int]]:
    return scan_dataset(root).counts


@pytest.fixture
def hosted(monkeypatch: pytest.MonkeyPatch):
    """Hosted mode with its default caps, inside a fresh workspace."""
    monkeypatch.setenv(hosting.ENV_VAR, "1")
    for name in list(os.environ):
        if name.startswith(hosting.ENV_PREFIX):
            monkeypatch.delenv(name)
    with in_workspace(new_workspace_token()):
        yield monkeypatch


# ------------------------------------------------------------------------------- the split


@pytest.mark.parametrize(
    ("n", "expected"),
    [(3, (1, 1, 1)), (5, (3, 1, 1)), (6, (2, 2, 2)), (10, (6, 2, 2)), (20, (14, 3, 3)),
     (30, (20, 5, 5)), (100, (70, 15, 15))],
)  # fmt: skip
def test_each_class_is_split_by_one_rule(n: int, expected: tuple[int, int, int]) -> None:
    assert photo_split.split_counts(n) == expected
    assert photo_split.split_sentence("cats", 20) == "20 cats: 14 train, 3 validation, 3 test"


def test_too_few_photos_are_an_error_and_few_a_warning() -> None:
    lines, warnings, errors = photo_split.plan_preview({"cats": 20, "dogs": 8, "owls": 2})
    assert lines == [
        "20 cats: 14 train, 3 validation, 3 test",
        "8 dogs: 4 train, 2 validation, 2 test",
    ]
    assert errors == ["owls has 2 usable photos: at least 3 are needed (one to train, one to "
                      "validate, one to test); add 1 more"]  # fmt: skip
    assert len(warnings) == 1 and warnings[0].startswith("dogs has only 8 photos, so 2 to validate")
    assert "add 9 more (17 in all)" in warnings[0]


def test_the_split_is_seeded_and_added_photos_fill_what_a_split_lacks() -> None:
    items = list(range(20))
    assert photo_split.assign(items, 1, "cats") == photo_split.assign(items, 1, "cats")
    assert photo_split.assign(items, 1, "cats") != photo_split.assign(items, 2, "cats")
    added = photo_split.assign_added(list(range(10)), {"train": 14, "validation": 3, "test": 3},
                                     0, "cats")  # fmt: skip
    assert {s: len(v) for s, v in added.items()} == {"train": 6, "validation": 2, "test": 2}


# ------------------------------------------------------------------------ new datasets


def test_two_classes_make_a_normal_dataset_with_the_split_in_words() -> None:
    report = build_dataset("pets", {"cats": photos(0, 20), "dogs": photos(1, 20)}, seed=3)
    assert report.out == datasets_dir() / "pets"
    sizes = zip(SPLITS, (14, 3, 3), strict=True)
    assert counts(report.out) == {s: {"cats": n, "dogs": n} for s, n in sizes}
    assert report.split_lines == ["20 cats: 14 train, 3 validation, 3 test",
                                  "20 dogs: 14 train, 3 validation, 3 test"]  # fmt: skip
    assert "Made dataset pets from 40 photo(s)." in report.summary()
    assert sorted(p.name for p in report.out.iterdir()) == [MANIFEST_NAME, *sorted(SPLITS)]
    assert builder_made(report.out)
    # Nothing left behind beside it; the same photos and seed split the same way.
    assert [p.name for p in datasets_dir().iterdir()] == ["pets"]
    again = build_dataset("pets2", {"cats": photos(0, 20), "dogs": photos(1, 20)}, seed=3)
    names = lambda root: [p.name for p in list_images(root, "test")]  # noqa: E731
    assert names(again.out) == names(report.out)


def test_three_classes_and_bad_files_left_out_with_their_reason() -> None:
    given = {
        "cats": [*photos(0, 6), ("notes.txt", b"remember the milk"), ("cut.jpg", truncated_jpeg())],
        "dogs": photos(1, 6),
        "birds": [*photos(2, 5, size=48), ("empty.png", b"")],
    }
    report = build_dataset("three", given)
    assert scan_dataset(report.out).classes == ("birds", "cats", "dogs")
    assert sum(counts(report.out)["train"].values()) == 3 + 2 + 2
    reasons = [s.reason for s in report.skipped]
    assert reasons[0] == "cats/notes.txt is not an image (got 17 bytes of text)"
    assert reasons[1].startswith("cats/cut.jpg is a corrupt or truncated image")
    assert reasons[2] == "birds/empty.png is not an image: it is empty (0 bytes)"
    assert any(w.startswith("birds has only 5 photos, so 1 to") for w in report.warnings)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"cats": photos(0, 5)}, "a classifier needs at least 2 classes, got 1"),
        ({"cats": photos(0, 5), "Cats ": photos(1, 5)}, "two classes are called 'Cats' and 'cats'"),
        ({"cats": photos(0, 5), "a/b": photos(1, 5)}, "class name 'a/b' cannot be a folder name"),
        ({"cats": photos(0, 5), "dogs": [*photos(1, 2), ("x.jpg", b"no")]},
         "dogs has 2 usable photos: at least 3 are needed (one to train, one to validate, one to "
         "test); add 1 more (1 left out, e.g. dogs/x.jpg is not an image (got 2 bytes of text)); "
         "nothing was written"),
    ],
)  # fmt: skip
def test_what_cannot_make_a_dataset_writes_nothing(given: dict, message: str) -> None:
    with pytest.raises(DatasetError) as caught:
        build_dataset("pets", given)
    assert message in str(caught.value)
    assert list(datasets_dir().iterdir()) == []


def test_a_taken_name_is_refused_and_the_dataset_there_kept() -> None:
    first = build_dataset("pets", {"cats": photos(0, 3), "dogs": photos(1, 3)})
    before = tree_digest(first.out)
    with pytest.raises(DatasetError, match="a dataset called 'pets' exists; choose another"):
        build_dataset("pets", {"cats": photos(0, 4), "dogs": photos(1, 4)})
    with pytest.raises(DatasetError, match="is the built-in demo dataset's name"):
        build_dataset("demo", {"cats": photos(0, 4), "dogs": photos(1, 4)})
    assert tree_digest(first.out) == before


def test_paths_are_read_like_an_import_locally(tmp_path: Path) -> None:
    files = [write(tmp_path / f"c{i}.png", image_bytes(0, fmt="PNG", seed=i)) for i in range(3)]
    os.symlink(files[0], tmp_path / "link.jpg")
    report = build_dataset("paths", {"cats": [*files, tmp_path / "link.jpg"],
                                     "dogs": photos(1, 3)})  # fmt: skip
    assert report.skipped[0].reason == (
        "cats/link.jpg is a symbolic link; catdog never follows links"
    )
    assert len(report.skipped) == 1
    assert sorted(p.name for p in report.out.rglob("c*.jpg")) == ["c0.jpg", "c1.jpg", "c2.jpg"]


# ------------------------------------------------------------------------ adding photos


def test_added_photos_make_a_new_version_and_leave_the_dataset_as_it_was() -> None:
    first = build_dataset("pets", {"cats": photos(0, 20), "dogs": photos(1, 20)})
    before = tree_digest(first.out)
    report = add_photos("pets", {"cats": photos(0, 10, "more_"), "owls": photos(2, 6)})
    assert report.out.name == "pets-v2" == version_name("pets-v1").replace("v3", "v2")
    assert tree_digest(first.out) == before
    after = counts(report.out)
    assert after["train"] == {"cats": 20, "dogs": 14, "owls": 2}
    assert after["validation"] == {"cats": 5, "dogs": 3, "owls": 2}
    assert "cats: 10 added (6 train, 2 validation, 2 test), 30 in all" in report.split_lines
    assert version_name("pets") == "pets-v3"


def test_an_in_place_append_only_adds_files_to_a_dataset_made_here() -> None:
    first = build_dataset("pets", {"cats": photos(0, 6), "dogs": photos(1, 6)})
    before = {p: p.read_bytes() for p in first.out.rglob("*.jpg")}
    report = add_photos("pets", {"Cats": photos(0, 3)}, in_place=True)  # same names, any case
    assert report.out == first.out and report.in_place
    assert all(path.read_bytes() == data for path, data in before.items())
    assert sum(sum(c.values()) for c in counts(first.out).values()) == 15
    assert len(list(first.out.rglob("IMG_0-2.jpg"))) == 1
    manifest = json.loads((first.out / MANIFEST_NAME).read_text())
    assert [a["in_place"] for a in manifest["builder"]["additions"]] == [False, True]
    with pytest.raises(DatasetError, match="'owls' is not a class of 'pets'; a new class makes"):
        add_photos("pets", {"owls": photos(2, 5)}, in_place=True)


def test_an_imported_dataset_is_never_changed_in_place(tiny_dataset: Path) -> None:
    from catdog.data.importer import import_dataset

    imported = import_dataset(tiny_dataset, datasets_dir() / "imported").out
    before = tree_digest(imported)
    with pytest.raises(DatasetError, match="was imported, not made from photos here"):
        add_photos("imported", {"cats": photos(0, 3)}, in_place=True)
    assert add_photos("imported", {"cats": photos(0, 3)}).out.name == "imported-v2"
    assert tree_digest(imported) == before


# ------------------------------------------------------------------------ hosted mode


def test_hosted_mode_takes_uploads_only_within_its_caps(hosted, tmp_path: Path) -> None:
    path = write(tmp_path / "cat.jpg", image_bytes(0))
    with pytest.raises(HostedLimitError, match="is refused in hosted mode: the server's own"):
        build_dataset("pets", {"cats": [path] * 3, "dogs": photos(1, 3)})
    hosted.setenv("CATDOG_HOSTED_MAX_DATASET_IMAGES", "8")
    with pytest.raises(HostedLimitError, match="a dataset of 9 images is over hosted mode's cap"):
        build_dataset("pets", {"cats": photos(0, 5), "dogs": photos(1, 4)})
    hosted.setenv("CATDOG_HOSTED_MAX_UPLOAD_MB", "0.001")  # 1 KB: the 40-px photos are bigger
    small = [(f"s{i}.png", image_bytes(0, 8, seed=i, fmt="PNG")) for i in range(3)]
    with pytest.raises(DatasetError, match=r"dogs has 0 usable photos.*over hosted mode's cap"):
        build_dataset("pets", {"cats": small, "dogs": photos(1, 3)})
    assert list(datasets_dir().iterdir()) == []


def test_hosted_quota_counts_what_the_photos_add(hosted) -> None:
    report = build_dataset("pets", {"cats": photos(0, 3), "dogs": photos(1, 3)})
    hosted.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", str(folder_size(report.out) / 2**20))
    before = tree_digest(report.out)
    with pytest.raises(HostedLimitError, match="over its quota"):
        add_photos("pets", {"cats": photos(0, 3, "more_")}, in_place=True)
    with pytest.raises(HostedLimitError, match="over its quota"):
        add_photos("pets", {"cats": photos(0, 3, "more_")})
    assert tree_digest(report.out) == before
    assert [p.name for p in datasets_dir().iterdir()] == ["pets"]
    # What is staged is counted once: a new version that fits the quota is made.
    size = folder_size(report.out)
    hosted.setenv("CATDOG_HOSTED_WORKSPACE_QUOTA_MB", str(2.6 * size / 2**20))
    assert add_photos("pets", {"cats": photos(0, 1, "more_")}).out.name == "pets-v2"


# ------------------------------------------------------------------------ class names


def test_class_names_are_stored_composed_and_checked() -> None:
    assert check_class_names(["  cafe\u0301 ", "dogs"]) == ["café", "dogs"]
    bad_names = [("", "a class needs a name"), (".hidden", "it starts with '.'"),
                 ("x" * 65, "longer than 64"), ("a\nb", "cannot be a folder name")]  # fmt: skip
    for bad, why in bad_names:
        with pytest.raises(DatasetError, match=why):
            check_class_names([bad, "dogs"])


# ------------------------------------------------------------------------ the command line


def test_new_dataset_and_add_photos_commands(tmp_path: Path, capsys) -> None:
    for k, cls in enumerate(("cats", "dogs")):
        for i in range(4):
            write(tmp_path / cls / f"{cls}{i}.jpg", image_bytes(k, seed=10 * k + i))
    write(tmp_path / "cats" / "readme.txt", b"hello")
    code = main(["new-dataset", "pets", "--class", "cats", str(tmp_path / "cats"),
                 "--class", "dogs", *map(str, sorted((tmp_path / "dogs").iterdir()))])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "4 cats: 2 train, 1 validation, 1 test" in out
    assert "cats/readme.txt is not an image (got 5 bytes of text)" in out
    assert out.strip().splitlines()[-1] == str(datasets_dir() / "pets")
    more = write(tmp_path / "more.jpg", image_bytes(0, seed=99))
    assert main(["add-photos", "pets", "--class", "cats", str(more), "--in-place"]) == 0
    assert "Added 1 photo(s) to pets in place." in capsys.readouterr().out
    assert main(["add-photos", "pets", "--class", "cats", str(more)]) == 0
    assert capsys.readouterr().out.strip().endswith("pets-v2")
    assert main(["new-dataset", "solo", "--class", "cats", str(more)]) == 2
    assert capsys.readouterr().err == (
        "error: a classifier needs at least 2 classes, got 1; add another\n"
    )

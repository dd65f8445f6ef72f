"""Reading datasets back: checking the layout, listing images in order, image sizes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from builders import class_folders

from catdog.data.datasets import (
    DatasetError,
    class_images,
    image_sizes,
    labelled_images,
    list_datasets,
    list_images,
    scan_dataset,
)
from catdog.data.importer import import_dataset
from catdog.data.paths import datasets_dir


def test_scan_dataset_counts(tiny_dataset: Path) -> None:
    info = scan_dataset(tiny_dataset)
    assert info.classes == ("cats", "dogs") and info.name == tiny_dataset.name
    assert info.counts["train"] == {"cats": 16, "dogs": 16}
    assert info.totals == {"train": 32, "validation": 16, "test": 16} and info.total == 64


def test_scan_dataset_errors(dataset_factory: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(tmp_path / "nothing")
    root = dataset_factory(counts=(2, 1, 1))
    shutil.rmtree(root / "test" / "dogs")
    with pytest.raises(DatasetError, match="test/ lacks dogs"):
        scan_dataset(root)
    shutil.rmtree(root / "test")
    with pytest.raises(DatasetError, match="has no test folder"):
        scan_dataset(root)
    shutil.rmtree(root / "train" / "dogs")
    (root / "test").mkdir()
    with pytest.raises(DatasetError, match="train/ has 1 class folder"):
        scan_dataset(root)


def test_list_images_is_in_natural_order(dataset_factory: Callable[..., Path]) -> None:
    root = dataset_factory(counts=(12, 1, 1))
    cats = list_images(root, "train", "cats")
    assert [p.name for p in cats[:3]] == ["cat.0.jpg", "cat.1.jpg", "cat.2.jpg"]
    assert cats[-1].name == "cat.11.jpg"
    assert len(list_images(root, "train")) == 24
    with pytest.raises(DatasetError, match="no class 'birds'"):
        list_images(root, "train", "birds")
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        list_images(root, "val")


def test_special_files_named_as_images_are_listed_so_reading_them_can_say_why(
    dataset_factory: Callable[..., Path],
) -> None:
    root = dataset_factory(counts=(2, 1, 1))
    cats = root / "train" / "cats"
    os.mkfifo(cats / "cat.5.jpg")  # a pipe: reading it must not wait for a writer
    (cats / "cat.6.jpg").symlink_to(cats / "gone.jpg")  # a broken link
    (cats / "__MACOSX").mkdir()
    assert [p.name for p in class_images(cats)] == [
        "cat.0.jpg",
        "cat.1.jpg",
        "cat.5.jpg",
        "cat.6.jpg",
    ]
    assert scan_dataset(root).counts["train"] == {"cats": 4, "dogs": 2}
    paths, labels = labelled_images(root / "train", ["dogs", "cats"])
    assert [p.name for p in paths] == [
        "dog.0.jpg",
        "dog.1.jpg",
        *(p.name for p in class_images(cats)),
    ]
    assert labels == [0, 0, 1, 1, 1, 1]
    assert len(image_sizes(root)) == 8  # the two that are no images are left out of the sizes


def test_list_datasets_finds_valid_datasets_in_the_home(tmp_path: Path) -> None:
    source = class_folders(tmp_path / "src", counts=(4, 2, 2))
    import_dataset(source, datasets_dir() / "pets")
    (datasets_dir() / "junk").mkdir()
    (datasets_dir() / ".pets.importing-x").mkdir()
    assert [info.name for info in list_datasets()] == ["pets"]


def test_image_sizes_reads_headers(dataset_factory: Callable[..., Path]) -> None:
    root = dataset_factory(counts=(2, 1, 1), size=48)
    rows = image_sizes(root)
    assert len(rows) == 8
    assert rows[0] == ("train", "cats", "cat.0.jpg", 48, 48)


def test_balance_warnings_give_the_counts_from_five_to_one() -> None:
    from catdog.data.datasets import balance_warnings

    def counts(cats: int, dogs: int) -> dict[str, dict[str, int]]:
        return {"train": {"cats": cats, "dogs": dogs}, "test": {"cats": 0, "dogs": dogs}}

    assert balance_warnings(counts(10, 20)) == []  # 10 to 40: 1:4
    [warning] = balance_warnings(counts(3, 75))  # 3 to 150
    assert warning.startswith(
        "the classes are very unequal: dogs has 150 images, cats 3 (50 to 1). A model that "
        "always answers dogs is right 98% of the time"
    )
    assert balance_warnings({"train": {"cats": 0, "dogs": 9}}) == []  # empty: another problem


def test_training_problems_refuse_a_class_without_training_images(tmp_path: Path) -> None:
    from catdog.data.datasets import training_problems

    root = class_folders(tmp_path / "data", counts=(4, 1, 1))
    for path in (root / "train" / "dogs").iterdir():
        path.unlink()
    errors, _ = training_problems(scan_dataset(root))
    assert errors == ["train/ has no images of dogs (cats 4, dogs 0): every class needs training "
                      "images"]  # fmt: skip
    for path in (root / "test" / "cats").iterdir():
        path.unlink()
    for path in (root / "test" / "dogs").iterdir():
        path.unlink()
    assert training_problems(scan_dataset(root))[1][0] == (
        "test/ has no images of cats, dogs (cats 0, dogs 0): the run will have no test accuracy "
        "(--no-test says so)"
    )


def test_training_problems_warn_about_missing_classes_and_imbalance(tmp_path: Path) -> None:
    from catdog.data.datasets import training_problems

    root = class_folders(tmp_path / "data", counts=(20, 1, 1))
    for path in (root / "train" / "cats").iterdir():
        if not path.name.startswith("cat.0."):
            path.unlink()
    (next((root / "validation" / "cats").iterdir())).unlink()
    errors, warnings = training_problems(scan_dataset(root))
    assert errors == []
    assert warnings[0] == (
        "validation/ has no images of cats (cats 0, dogs 1): its accuracy there leaves them out"
    )
    assert warnings[1].startswith("the classes are very unequal: dogs has 22 images, cats 2")

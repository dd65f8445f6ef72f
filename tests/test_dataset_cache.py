"""A dataset's listings and image sizes are remembered while nothing changed, and only then."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from catdog.data.datasets import class_images, dataset_version, image_sizes, scan_dataset
from catdog.data.header_cache import CACHE_FOLDER, HeaderCache

HOUR_AGO_NS = 3600 * 10**9


def settle(folder: Path) -> int:
    """Date a folder an hour back (as one left alone for a while); its new mtime."""
    stamp = folder.stat().st_mtime_ns - HOUR_AGO_NS
    os.utime(folder, ns=(stamp, stamp))
    return stamp


def test_a_listing_is_remembered_until_the_folder_changes(
    dataset_factory: Callable[..., Path],
) -> None:
    cats = dataset_factory(counts=(3, 1, 1)) / "train" / "cats"
    stamp = settle(cats)
    assert len(class_images(cats)) == 3
    # A file slipped in with the folder's time put back: the remembered listing is used.
    Image.new("RGB", (40, 40)).save(cats / "cat.99.jpg")
    os.utime(cats, ns=(stamp, stamp))
    assert len(class_images(cats)) == 3
    # The folder's time moves (as adding, removing or renaming a file moves it): listed again.
    os.utime(cats, ns=(stamp + 10**9, stamp + 10**9))
    assert [p.name for p in class_images(cats)][-1] == "cat.99.jpg"
    assert scan_dataset(cats.parent.parent).counts["train"]["cats"] == 4


def test_a_folder_changed_just_now_is_never_remembered(
    dataset_factory: Callable[..., Path],
) -> None:
    root = dataset_factory(counts=(2, 1, 1))
    assert scan_dataset(root).counts["train"]["dogs"] == 2
    Image.new("RGB", (40, 40)).save(root / "train" / "dogs" / "dog.7.jpg")
    assert scan_dataset(root).counts["train"]["dogs"] == 3
    (root / "train" / "dogs" / "dog.0.jpg").unlink()
    assert scan_dataset(root).counts["train"]["dogs"] == 2


def test_image_sizes_are_read_once_and_again_for_a_changed_file(
    dataset_factory: Callable[..., Path], catdog_home: Path
) -> None:
    root = dataset_factory(counts=(2, 1, 1), size=40)
    assert {(w, h) for *_, w, h in image_sizes(root)} == {(40, 40)}
    (cache_file,) = catdog_home.joinpath(*CACHE_FOLDER).glob("*.json")
    # Prove the second answer comes from the cache: plant a width only the cache knows.
    data = json.loads(cache_file.read_text())
    data["files"]["train/cats/cat.0.jpg"][2] = 999
    cache_file.write_text(json.dumps(data))
    assert ("train", "cats", "cat.0.jpg", 999, 40) in image_sizes(root)
    # The file changes (new size and time): its header is read again, the planted width goes.
    photo = root / "train" / "cats" / "cat.0.jpg"
    Image.new("RGB", (64, 48)).save(photo)
    os.utime(photo, ns=(photo.stat().st_mtime_ns + 10**9,) * 2)
    assert ("train", "cats", "cat.0.jpg", 64, 48) in image_sizes(root)
    assert json.loads(cache_file.read_text())["files"]["train/cats/cat.0.jpg"][2:] == [64, 48]


def test_a_damaged_or_foreign_cache_file_is_ignored(
    dataset_factory: Callable[..., Path], catdog_home: Path
) -> None:
    root = dataset_factory(counts=(1, 1, 1), size=40)
    cache = HeaderCache(root)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_text("{not json")
    assert len(image_sizes(root)) == 6
    data = json.loads(cache.path.read_text())
    data["root"] = "/elsewhere"  # another folder's sizes under the same name: not used
    data["files"] = {key: [0, 0, 1, 1] for key in data["files"]}
    cache.path.write_text(json.dumps(data))
    assert {(w, h) for *_, w, h in image_sizes(root)} == {(40, 40)}


def test_the_dataset_version_moves_when_an_image_is_added_or_removed(
    dataset_factory: Callable[..., Path],
) -> None:
    root = dataset_factory(counts=(1, 1, 1))
    for folder in [root, *root.rglob("*")]:
        if folder.is_dir():
            settle(folder)
    before = dataset_version(root)
    assert dataset_version(root) == before  # nothing changed
    (root / "test" / "dogs" / "dog.0.jpg").unlink()
    assert dataset_version(root) > before


def test_sizes_are_remembered_where_a_dataset_is_made(
    dataset_factory: Callable[..., Path], catdog_home: Path
) -> None:
    from catdog.data.demo import ensure_demo_dataset
    from catdog.data.importer import import_dataset

    demo = ensure_demo_dataset(counts=(3, 2, 2))
    source = dataset_factory(counts=(3, 2, 2), size=40)
    imported = Path(import_dataset(source, catdog_home / "datasets" / "photos").out)
    # Written where each was made, before anyone asked: the Dataset page reads no header.
    written = {
        data["root"]: data["files"]
        for data in (
            json.loads(f.read_text()) for f in catdog_home.joinpath(*CACHE_FOLDER).glob("*.json")
        )
    }
    assert set(written) == {str(demo.resolve()), str(imported.resolve())}
    assert len(written[str(demo.resolve())]) == scan_dataset(demo).total
    sizes = {tuple(entry[2:]) for entry in written[str(imported.resolve())].values()}
    assert len(written[str(imported.resolve())]) == scan_dataset(imported).total
    assert sizes == {(40, 40)}

"""catdog.data.browse: dataset choices, counts and sizes, thumbnails, paging and import names."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from catdog.data.browse import (
    check_new_dataset_name,
    count_rows,
    dataset_choices,
    dataset_name_for,
    describe,
    image_details,
    import_named,
    page_count,
    page_items,
    preview_image,
    size_rows,
    size_summary,
    thumbnail,
)
from catdog.data.datasets import DatasetError, scan_dataset
from catdog.data.demo import generate_demo_dataset
from catdog.data.images import ImageError
from catdog.data.paths import datasets_dir, demo_dataset_dir


def test_choices_list_the_demo_first_even_before_it_is_drawn(
    dataset_factory: Callable[..., Path],
) -> None:
    dataset_factory(counts=(3, 2, 2)).rename(datasets_dir() / "pets")
    choices = dataset_choices()
    assert [c.name for c in choices] == ["demo", "pets"]
    assert not choices[0].ready and choices[0].is_demo
    assert "drawn on first use" in describe(choices[0])
    assert choices[1].ready and describe(choices[1]) == (
        "pets — cats, dogs — 6 train · 4 validation · 4 test"
    )
    generate_demo_dataset(demo_dataset_dir(), counts=(2, 1, 1))
    assert dataset_choices()[0].info.totals == {"train": 4, "validation": 2, "test": 2}


def test_counts_and_sizes(dataset_factory: Callable[..., Path]) -> None:
    info = scan_dataset(dataset_factory(counts=(3, 2, 1), size=40))
    rows = count_rows(info)
    assert rows[0] == {"split": "train", "class": "cats", "images": 3}
    assert sum(r["images"] for r in rows) == info.total == 12
    sizes = size_rows(info.root)
    assert len(sizes) == 12
    assert {(r["width"], r["height"]) for r in sizes} == {(40, 40)}
    assert size_summary(sizes)["median_width"] == 40
    assert size_summary([]) == {}


def test_thumbnail_is_a_square_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 100), (200, 30, 30)).save(path)
    thumb = Image.open(io.BytesIO(thumbnail(path, size=64)))
    assert (thumb.format, thumb.size) == ("JPEG", (64, 64))
    big = Image.open(io.BytesIO(preview_image(path.read_bytes(), max_side=150)))
    assert big.size == (150, 50)  # aspect kept
    assert image_details(path) == {
        "file": "wide.png",
        "format": "PNG",
        "width": 300,
        "height": 100,
        "bytes": path.stat().st_size,
    }
    with pytest.raises(ImageError, match=r"notes\.txt is not an image"):
        thumbnail(b"just some text", name="notes.txt")


def test_paging() -> None:
    items = list(range(40))
    assert page_count(40, 18) == 3 and page_count(0, 18) == 1
    assert page_items(items, 1, 18) == list(range(18))
    assert page_items(items, 3, 18) == list(range(36, 40))
    assert page_items(items, 9, 18) == list(range(36, 40))  # clamped to the last page


def test_dataset_names(tmp_path: Path) -> None:
    assert dataset_name_for("My Pets (2024).ZIP") == "my-pets-2024"
    assert dataset_name_for("/home/me/PetImages/") == "petimages"
    (datasets_dir() / "petimages").mkdir()
    assert dataset_name_for("PetImages") == "petimages-2"
    assert dataset_name_for("demo.zip") == "demo-2"
    assert check_new_dataset_name("pets") == datasets_dir() / "pets"
    with pytest.raises(DatasetError, match="not usable"):
        check_new_dataset_name("../escape")
    with pytest.raises(DatasetError, match="built-in demo"):
        check_new_dataset_name("demo")


def _zip_bytes(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


def test_import_named_takes_an_upload_and_names_it_as_uploaded(
    dataset_factory: Callable[..., Path],
) -> None:
    upload = ("My Pets.zip", _zip_bytes(dataset_factory(counts=(3, 2, 2))))
    report, summary = import_named(upload, "pets")
    assert report.out == datasets_dir() / "pets"
    assert scan_dataset(report.out).total == 14
    assert summary.startswith("Imported 14 images from My Pets.zip into ")
    assert "catdog-upload-" not in summary
    with pytest.raises(DatasetError, match="never overwrites") as caught:
        import_named(upload, "pets")
    assert "catdog-upload-" not in str(caught.value)
    with pytest.raises(DatasetError, match="does not exist"):
        import_named(Path("/no/such/folder"), "other")

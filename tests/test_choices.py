"""catdog.data.choices: which datasets there are to choose, and naming and importing one."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from catdog.data.choices import (
    check_new_dataset_name,
    dataset_choices,
    dataset_name_for,
    describe,
    import_named,
)
from catdog.data.datasets import DatasetError, scan_dataset
from catdog.data.demo import generate_demo_dataset
from catdog.data.paths import datasets_dir, demo_dataset_dir


def test_choices_list_the_demo_first_even_before_it_is_drawn(
    dataset_factory: Callable[..., Path],
) -> None:
    dataset_factory(counts=(3, 2, 2)).rename(datasets_dir() / "pets")
    choices = dataset_choices()
    assert [c.name for c in choices] == ["demo", "pets"]
    assert choices[0].info is None and choices[0].is_demo  # not drawn yet
    assert "drawn on first use" in describe(choices[0])
    assert choices[1].info is not None and describe(choices[1]) == (
        "pets — cats, dogs — 6 train · 4 validation · 4 test"
    )
    generate_demo_dataset(demo_dataset_dir(), counts=(2, 1, 1))
    assert dataset_choices()[0].info.totals == {"train": 4, "validation": 2, "test": 2}


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

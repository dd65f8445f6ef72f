"""Hostile and malformed zips: each is refused or its bad entries skipped, with a message
naming the archive and the entry; nothing but ArchiveError (DatasetError when importing)
escapes, and the datasets already in the data home are never changed.

The design: an entry that is merely unusable (encrypted, unsupported compression, damaged
data, a name no file system stores, too big) is skipped and reported, so the rest of an honest
archive is still imported. An archive that is unsafe (it could write outside its folder, or is
a bomb) or ambiguous (two entries of one name, a file that is also a folder, end records that
disagree, a NUL in a name) is refused whole, before a byte is written: once an archive lies
about its structure, none of its entries can be trusted to be what they say.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import hostile
import pytest
from builders import RawEntry, deflated, raw_zip, tree_digest
from conftest import make_dataset
from hostile import ARCHIVES, GOOD_NAMES, PHOTO, Archive, P, good_entries, raw, with_comment

from catdog.data import archive as archive_module
from catdog.data.archive import ArchiveError, ExtractLimits, safe_extract
from catdog.data.datasets import DatasetError
from catdog.data.importer import import_dataset
from catdog.data.paths import data_home, datasets_dir


def check_text(text: str, expected: str | re.Pattern[str]) -> None:
    if isinstance(expected, str):
        assert text == expected
    else:
        assert expected.fullmatch(text), text


@pytest.fixture
def home_before() -> tuple[Path, dict[str, str]]:
    """A dataset already in the data home, and the digest of the whole home."""
    make_dataset(datasets_dir() / "pets", counts=(2, 1, 1), size=32)
    return data_home(), tree_digest(data_home())


@pytest.mark.parametrize("case", ARCHIVES, ids=[c.id for c in ARCHIVES])
def test_hostile_archive(
    case: Archive, tmp_path: Path, home_before: tuple[Path, dict[str, str]], monkeypatch
) -> None:
    archive = case.build(tmp_path / P)
    untouched = archive.read_bytes()
    out = tmp_path / "out"
    # 1. safe_extract itself
    if case.skipped is None:
        with pytest.raises(ArchiveError) as caught:
            safe_extract(archive, out, limits=case.limits)
        check_text(str(caught.value), case.message)
        if "none of its" not in str(caught.value):
            assert not out.exists()  # refused before writing a byte
    else:
        result = safe_extract(archive, out, limits=case.limits)
        [skipped] = result.skipped
        assert skipped.name == case.skipped
        check_text(skipped.reason, case.message)
        assert sorted(p.relative_to(out).as_posix() for p in result.files) == GOOD_NAMES
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == (
            GOOD_NAMES
        )
    # 2. importing it into the data home, beside an existing dataset
    home, before = home_before
    if case.limits is not None:
        monkeypatch.setattr(archive_module, "ExtractLimits", lambda: case.limits)
    if case.skipped is None:
        with pytest.raises(DatasetError) as caught:
            import_dataset(archive, datasets_dir() / "incoming")
        check_text(str(caught.value), case.message)
        assert tree_digest(home) == before
    else:
        report = import_dataset(archive, datasets_dir() / "incoming")
        assert report.total == 6 and report.classes == ["cats", "dogs"]
        [skipped] = report.skipped
        assert skipped.file == case.skipped
        check_text(skipped.reason, case.message)
        after = tree_digest(home)
        made = ("datasets/incoming/", "cache/image-sizes/")  # the new dataset, its sizes
        assert {k: v for k, v in after.items() if not k.startswith(made)} == before
    assert sorted(p.name for p in datasets_dir().iterdir()) == (
        ["pets"] if case.skipped is None else ["incoming", "pets"]
    )  # no work folder left behind
    assert archive.read_bytes() == untouched


def test_over_limit_counts_are_refused_before_zipfile_parses(tmp_path: Path, monkeypatch) -> None:
    archive = raw_zip(tmp_path / P, good_entries(), zip64={"count": 10**12})

    def never(*args, **kwargs):
        raise AssertionError("zipfile.ZipFile must not parse an archive refused by its end record")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    started = time.perf_counter()
    with pytest.raises(ArchiveError, match=r"declares 1,000,000,000,000 entries"):
        safe_extract(archive, tmp_path / "out")
    raw_zip(tmp_path / "lies.zip", good_entries() * 3, count=1)  # 18 entries, declares 1
    with pytest.raises(ArchiveError, match="holds more than 5 entries although its end record"):
        safe_extract(tmp_path / "lies.zip", tmp_path / "out", limits=ExtractLimits(max_entries=5))
    assert time.perf_counter() - started < 2


def test_backslash_and_legacy_names_are_extracted_where_they_belong(tmp_path: Path) -> None:
    archive = raw_zip(
        tmp_path / P,
        [
            RawEntry("cats\\windows.jpg", PHOTO),  # old Windows tools write backslashes
            RawEntry("cats/K\x84tzchen.jpg".encode("latin-1"), PHOTO),  # cp437 ä, no UTF-8 flag
            RawEntry("dogs/Müller.jpg".encode(), PHOTO),  # UTF-8 without the flag (macOS)
            RawEntry("dogs/Straße.jpg".encode(), PHOTO, flags=0x800),  # UTF-8, flagged
        ],
    )
    result = safe_extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in result.files) == [
        "cats/Kätzchen.jpg", "cats/windows.jpg", "dogs/Müller.jpg", "dogs/Straße.jpg"
    ]  # fmt: skip
    assert result.skipped == []


@pytest.mark.parametrize(
    "build", [with_comment(b"made by a photo app"), raw(zip64={})], ids=["comment", "zip64"]
)
def test_honest_archives_with_comments_or_zip64_records_are_read(
    tmp_path: Path, build: Callable[[Path], Path]
) -> None:
    result = safe_extract(build(tmp_path / P), tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in result.files) == GOOD_NAMES
    assert result.skipped == []


@pytest.fixture(scope="module")
def bomb_stream() -> tuple[bytes, int]:
    """Raw deflate of 256 MiB of zeros (about 250 KB) and its CRC."""
    return hostile.bomb_stream()


@pytest.mark.parametrize("declared", ["honest", "lying"])
def test_zip_bomb_costs_bounded_time_and_memory(
    tmp_path: Path, bomb_stream: tuple[bytes, int], declared: str
) -> None:
    data, crc = bomb_stream
    size = 256 << 20 if declared == "honest" else 1000  # a lying header claims 1000 bytes
    archive = raw_zip(
        tmp_path / P,
        [*good_entries(), RawEntry("cats/zeros.jpg", data, method=8, crc=crc, size=size)],
    )
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = safe_extract(archive, tmp_path / "out")
        outcome = result.skipped[0].reason
    except ArchiveError as exc:
        outcome = str(exc)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if declared == "honest":  # refused from its header, before decompressing anything
        assert re.fullmatch(
            re.escape(f"{P}: entry 'cats/zeros.jpg' would expand ")
            + r"[\d,]+× \([\d,]+ → 268,435,456 bytes; the limit is 100×\); "
            + "this looks like a zip bomb",
            outcome,
        ), outcome
    else:  # zipfile stops at the declared 1000 bytes; the checksum then fails
        assert outcome == (
            f"{P}: entry 'cats/zeros.jpg' is damaged: its data does not match its CRC-32 "
            "checksum; skipped"
        )
    assert elapsed < 5, elapsed
    assert peak < 32 << 20, peak  # the archive expands to 256 MiB; we hold a few MiB at most
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written < 1 << 20


def test_random_corruption_only_ever_raises_archive_error(tmp_path: Path) -> None:
    """Flip, cut and splice bytes of a good zip: extraction succeeds or raises ArchiveError."""
    entries = [*good_entries(), deflated("dogs/d.jpg", PHOTO)]
    good = raw_zip(tmp_path / "good.zip", entries).read_bytes()
    cd = good.index(b"PK\x01\x02")
    rng = random.Random(1234)
    outcomes = {"ok": 0, "refused": 0}
    for i in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(cd, len(data)) if rng.random() < 0.7 else rng.randrange(len(data))
            data[at] = rng.randrange(256)
        if rng.random() < 0.15:
            del data[rng.randrange(len(data)) :]
        path = tmp_path / f"m{i}.zip"
        path.write_bytes(bytes(data))
        try:
            safe_extract(path, tmp_path / f"out{i}")
            outcomes["ok"] += 1
        except ArchiveError as exc:
            assert str(exc).startswith(f"m{i}.zip"), exc
            outcomes["refused"] += 1
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0


def test_a_fifo_given_as_the_archive_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / P
    os.mkfifo(fifo)
    errors: list[BaseException] = []
    worker = threading.Thread(
        target=lambda: errors.append(_raises(lambda: safe_extract(fifo, tmp_path / "out"))),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "safe_extract blocked on a FIFO"
    [error] = errors
    assert isinstance(error, ArchiveError)
    assert str(error) == f"{P} is not a regular file; give a .zip file"


def _raises(action: Callable[[], object]) -> BaseException | None:
    try:
        action()
    except BaseException as exc:  # handed to the test thread to inspect
        return exc
    return None


def test_a_link_already_in_the_destination_is_not_followed(tmp_path: Path) -> None:
    archive = raw_zip(tmp_path / P, good_entries())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cats").symlink_to(elsewhere)
    with pytest.raises(ArchiveError) as caught:
        safe_extract(archive, tmp_path / "out")
    assert str(caught.value) == (f"{P}: entry 'cats/cat.0.jpg' would be written outside the folder")
    assert list(elsewhere.iterdir()) == []


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    """What a case-insensitive disk does with cats/A.jpg and cats/a.jpg, made visible here."""
    archive = raw_zip(tmp_path / P, good_entries())
    mine = tmp_path / "out" / "cats" / "cat.1.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"mine")
    with pytest.raises(ArchiveError) as caught:
        safe_extract(archive, tmp_path / "out")
    assert str(caught.value) == (
        f"{P}: entry 'cats/cat.1.jpg' would replace a file already there (on a disk that ignores "
        "case, two names differing only in case collide); the archive is refused. Extract it "
        "into an empty folder, or rename one of the two"
    )
    assert mine.read_bytes() == b"mine"

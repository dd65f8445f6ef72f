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
import struct
import threading
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from builders import RawEntry, deflated, image_bytes, raw_zip, tree_digest, zip_entries
from conftest import make_dataset

from catdog import archive as archive_module
from catdog.archive import ArchiveError, ExtractLimits, safe_extract
from catdog.datasets import DatasetError
from catdog.home import data_home, datasets_dir
from catdog.importer import import_dataset


def good_entries() -> list[RawEntry]:
    """Three cats and three dogs: enough for an import, whatever else the archive holds."""
    return [
        RawEntry(f"{cls}/{cls[:-1]}.{i}.jpg", image_bytes(k, seed=10 * k + i))
        for k, cls in enumerate(("cats", "dogs"))
        for i in range(3)
    ]


GOOD_NAMES = sorted(e.name for e in good_entries())
PHOTO = image_bytes(0, seed=99)


@dataclass(frozen=True)
class Case:
    """A hostile archive and what must happen to it."""

    id: str
    build: Callable[[Path], Path]  # writes the archive at the path given, returns it
    message: str | re.Pattern[str]  # the error, or the skipped entry's reason, exactly
    skipped: str | None = None  # the skipped entry's name; None: the archive is refused
    limits: ExtractLimits | None = None


def raw(*extra: RawEntry, **options) -> Callable[[Path], Path]:
    """Build the good entries plus ``extra`` with :func:`raw_zip`."""
    return lambda path: raw_zip(path, [*good_entries(), *extra], **options)


def edited(edit: Callable[[bytearray], None], *extra: RawEntry) -> Callable[[Path], Path]:
    """Build a raw zip, then change its bytes with ``edit``."""

    def build(path: Path) -> Path:
        raw_zip(path, [*good_entries(), *extra])
        data = bytearray(path.read_bytes())
        edit(data)
        path.write_bytes(bytes(data))
        return path

    return build


def _break_last_local_header(data: bytearray) -> None:
    data[data.rindex(b"PK\x03\x04") : data.rindex(b"PK\x03\x04") + 4] = b"XXXX"


def _truncate(data: bytearray) -> None:
    del data[len(data) // 2 :]


def with_comment(comment: bytes) -> Callable[[Path], Path]:
    """Build the good entries with zipfile, with an archive comment."""

    def build(path: Path) -> Path:
        with zipfile.ZipFile(path, "w") as zf:
            for entry in good_entries():
                zf.writestr(str(entry.name), entry.data)
            zf.comment = comment
        return path

    return build


P = "photos.zip"
AMBIGUOUS = "the archive is damaged or crafted, re-create it"
LONG = "cats/" + "a" * 300 + ".jpg"
DEEP = "cats/" + "/".join(["e" * 200] * 6) + "/x.jpg"
GOOD_BYTES = sum(len(e.data) for e in good_entries())

CASES = [
    # --- not a zip, or cut short ------------------------------------------------------------
    Case("not-a-zip", lambda p: (p.write_text("just some text\n"), p)[1],
         f"{P} is not a readable zip file (there is no zip end record in its last 64 KiB); "
         "choose a .zip archive"),
    Case("empty-file", lambda p: (p.write_bytes(b""), p)[1],
         f"{P} is not a readable zip file (there is no zip end record in its last 64 KiB); "
         "choose a .zip archive"),
    Case("truncated", edited(_truncate),
         f"{P} is not a readable zip file: it starts like one but its end (the central "
         "directory) is missing, so it was cut short, e.g. by an interrupted download or copy; "
         "get the file again"),
    # --- entries that are skipped, the rest imported ------------------------------------------
    Case("unsupported-method", raw(RawEntry("cats/b.jpg", b"\x00" * 50, plain=PHOTO, method=99)),
         f"{P}: entry 'cats/b.jpg' uses compression method 99 (unsupported); skipped. "
         "Re-create the archive with standard deflate", skipped="cats/b.jpg"),
    Case("deflate64", raw(RawEntry("cats/b.jpg", b"\x00" * 50, plain=PHOTO, method=9)),
         f"{P}: entry 'cats/b.jpg' uses compression method 9 (unsupported); skipped. "
         "Re-create the archive with standard deflate", skipped="cats/b.jpg"),
    Case("encrypted", raw(RawEntry("cats/b.jpg", b"\x13" * 60, plain=PHOTO, flags=0x1)),
         f"{P}: entry 'cats/b.jpg' is encrypted; skipped. Unzip it with its password and "
         "import the folder", skipped="cats/b.jpg"),
    Case("bad-crc", raw(deflated("cats/b.jpg", PHOTO, crc=zlib.crc32(PHOTO) ^ 1)),
         f"{P}: entry 'cats/b.jpg' is damaged: its data does not match its CRC-32 checksum; "
         "skipped", skipped="cats/b.jpg"),
    Case("corrupt-deflate", raw(RawEntry("cats/b.jpg", b"\xff" * 64, plain=PHOTO, method=8)),
         re.compile(re.escape(f"{P}: entry 'cats/b.jpg' has corrupt compressed data (Error -3 "
                              "while decompressing data: ") + r"[^)]+\); skipped"),
         skipped="cats/b.jpg"),
    Case("data-cut-short", raw(RawEntry("dogs/z.jpg", PHOTO, size=10_000, csize=10_000)),
         f"{P}: entry 'dogs/z.jpg' is cut short: the archive ends inside its data (truncated); "
         "skipped", skipped="dogs/z.jpg"),
    Case("bad-local-header", edited(_break_last_local_header, RawEntry("dogs/z.jpg", PHOTO)),
         f"{P}: entry 'dogs/z.jpg' has a damaged local header (Bad magic number for file "
         "header); skipped", skipped="dogs/z.jpg"),
    Case("name-too-long", raw(RawEntry(LONG, PHOTO)),
         f"{P}: entry {LONG[:80]!r}… has a name too long to store (a part of 304 bytes, 309 in "
         "all; the limits are 255 and 1024); skipped. Shorten it", skipped=LONG),
    Case("path-too-long", raw(RawEntry(DEEP, PHOTO)),
         f"{P}: entry {DEEP[:80]!r}… has a name too long to store (a part of 200 bytes, 1216 in "
         "all; the limits are 255 and 1024); skipped. Shorten it", skipped=DEEP),
    Case("control-character", raw(RawEntry("cats/a\nb.jpg", PHOTO)),
         f"{P}: entry 'cats/a\\nb.jpg' has control characters in its name; skipped. Rename the "
         "file", skipped="cats/a\nb.jpg"),
    Case("over-entry-cap", raw(RawEntry("cats/big.bmp", bytes(5000))),
         f"{P}: entry 'cats/big.bmp' is 5,000 bytes, over the 4,000-byte limit for one file "
         "(no photo is that big); skipped", skipped="cats/big.bmp",
         limits=ExtractLimits(max_entry_bytes=4000)),
    # --- names that escape or deceive: refused --------------------------------------------
    Case("absolute", raw(RawEntry("/etc/cron.d/evil", b"x")),
         f"{P}: entry '/etc/cron.d/evil' has an absolute path; refusing to extract an archive "
         "that writes outside its folder"),
    Case("dotdot", raw(RawEntry("cats/../../evil.jpg", b"x")),
         f"{P}: entry 'cats/../../evil.jpg' contains '..'; refusing to extract an archive that "
         "writes outside its folder"),
    Case("backslash-dotdot", raw(RawEntry("..\\..\\evil.jpg", b"x")),
         f"{P}: entry '..\\\\..\\\\evil.jpg' contains '..'; refusing to extract an archive that "
         "writes outside its folder"),
    Case("drive-letter", raw(RawEntry("C:\\Windows\\evil.dll", b"x")),
         f"{P}: entry 'C:\\\\Windows\\\\evil.dll' has an absolute path; refusing to extract an "
         "archive that writes outside its folder"),
    Case("nul-in-name", raw(RawEntry(b"cats/a.jpg\x00.exe", b"x")),
         f"{P}: entry 'cats/a.jpg\\x00.exe' has a NUL character in its name, a trick to show one "
         "name and extract another; the archive is refused"),
    Case("bad-utf8-name", raw(RawEntry(b"cats/\xff\xfe.jpg", PHOTO, flags=0x800)),
         f"{P}: entry 'cats/\ufffd\ufffd.jpg' is marked as having a UTF-8 name but its name is "
         "not valid UTF-8; re-create the archive"),
    Case("symlink", raw(RawEntry("cats/link.jpg", b"/etc/passwd", mode=0o120777)),
         f"{P}: entry 'cats/link.jpg' is a symbolic link; links in archives can point outside "
         "the extraction folder, so the archive is refused"),
    # --- ambiguous archives: refused -------------------------------------------------------
    Case("file-and-folder", raw(RawEntry("cats", b"not a folder")),
         f"{P}: entry 'cats' is a file, but entry 'cats/cat.0.jpg' makes it a folder; the "
         "archive is ambiguous and refused. Re-create it"),
    Case("folder-entry-and-file", raw(RawEntry("birds/", b""), RawEntry("birds", b"x")),
         f"{P}: entry 'birds' is a file, but entry 'birds/' makes it a folder; the archive is "
         "ambiguous and refused. Re-create it"),
    Case("duplicate", raw(RawEntry("cats/cat.0.jpg", PHOTO)),
         f"{P}: entry 'cats/cat.0.jpg' appears twice; which copy is meant is ambiguous, so the "
         "archive is refused. Re-create it"),
    Case("duplicate-by-backslash", raw(RawEntry("cats\\cat.1.jpg", PHOTO)),
         f"{P}: entry 'cats\\\\cat.1.jpg' appears twice; which copy is meant is ambiguous, so "
         "the archive is refused. Re-create it"),
    # --- end records and directory that lie: refused before zipfile parses ---------------------
    Case("too-many-entries", raw(),
         f"{P} declares 6 entries (the limit is 5); split it into smaller archives",
         limits=ExtractLimits(max_entries=5)),
    Case("count-lies-low", raw(count=1),
         f"{P} holds more than 5 entries although its end record declares 1; split it into "
         "smaller archives", limits=ExtractLimits(max_entries=5)),
    Case("count-disagrees", raw(count=2),
         f"{P}: its end record declares 2 entries but its central directory holds 6; {AMBIGUOUS}"),
    Case("directory-too-big", raw(),
         f"{P} has a 360-byte central directory (the limit is 100); split it into smaller "
         "archives", limits=ExtractLimits(max_directory_bytes=100)),
    Case("directory-size-lies", raw(cd_size=100_000),
         f"{P}: its central directory would start before the file does; the file is truncated "
         "or damaged, get it again"),
    Case("directory-size-short", raw(cd_size=330),
         f"{P}: its central directory is damaged at byte 0 of 330 (no entry header there); "
         "the file is truncated or corrupt, get it again"),
    Case("fake-end-record-in-comment", with_comment(b"PK\x05\x06 looks like an end record"),
         f"{P}: its archive comment holds a second zip end record, so tools disagree on what the "
         "archive contains; it is refused, re-create it"),
    Case("split-archive", raw(disk=1),
         f"{P} spans several disks (a split archive); join it first"),
    Case("zip64-billions", raw(zip64={"count": 10**12}),
         f"{P} declares 1,000,000,000,000 entries (the limit is 500,000); split it into smaller "
         "archives"),
    Case("zip64-locator-to-nothing", raw(zip64={"record": False}),
         f"{P} has a ZIP64 locator but no ZIP64 end record before it; {AMBIGUOUS}"),
    Case("zip64-records-disagree", raw(zip64={"count": 6, "classic_count": 4}),
         f"{P}: its end records disagree on the entry count (the ZIP64 record says one thing, "
         f"the classic record another); {AMBIGUOUS}"),
    Case("zip64-size-field-missing", raw(RawEntry("cats/b.jpg", PHOTO, size=0xFFFFFFFF)),
         f"{P}: entry 'cats/b.jpg' says its sizes are in a ZIP64 field, but that field holds 0 "
         f"of the 8 bytes needed; {AMBIGUOUS}"),
    Case("zip64-size-lies-huge", raw(RawEntry("cats/b.jpg", PHOTO, size=0xFFFFFFFF,
                                              extra=struct.pack("<HHQ", 1, 8, 1 << 40))),
         re.compile(re.escape(f"{P}: entry 'cats/b.jpg' would expand ") + r"[\d,]+× \("
                    + re.escape(f"{len(PHOTO):,} → 1,099,511,627,776 bytes; the limit is 100×); "
                                "this looks like a zip bomb"))),
    Case("corrupt-extra-field", raw(RawEntry("cats/b.jpg", PHOTO, extra=b"UT\x28\x00abcde")),
         f"{P}: entry 'cats/b.jpg' has a corrupt extra field (block 0x5455 says 40 bytes, 5 "
         "remain); the archive is refused, re-create it"),
    Case("needs-newer-zip", raw(RawEntry("cats/b.jpg", PHOTO, version=64)),
         f"{P}: entry 'cats/b.jpg' needs zip format 6.4 to extract (Python reads up to 6.3); "
         "re-create the archive with standard deflate"),
    Case("declared-total-over-cap", raw(RawEntry("cats/b.bmp", bytes(3000))),
         f"{P} would expand to more than {GOOD_BYTES + 1000:,} bytes (reached at entry "
         "'cats/b.bmp'); this looks like a zip bomb",
         limits=ExtractLimits(max_total_bytes=GOOD_BYTES + 1000)),
    Case("nothing-extractable",
         lambda p: raw_zip(p, [RawEntry("cats/a.jpg", b"?" * 9, plain=PHOTO, flags=1),
                               RawEntry("cats/b.jpg", b"?" * 9, plain=PHOTO, method=99)]),
         f"{P}: none of its 2 file(s) could be extracted; the first: {P}: entry 'cats/a.jpg' is "
         "encrypted; skipped. Unzip it with its password and import the folder"),
]  # fmt: skip


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


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_archive(
    case: Case, tmp_path: Path, home_before: tuple[Path, dict[str, str]], monkeypatch
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
        assert {k: v for k, v in after.items() if not k.startswith("datasets/incoming/")} == before
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


def test_the_writer_counts_bytes_itself_and_stops_at_the_cap(tmp_path: Path, monkeypatch) -> None:
    """Even if zipfile handed out more bytes than the header declares, the copy stops."""
    archive = zip_entries(tmp_path / P, [("cats/a.jpg", PHOTO)])

    class Endless:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n: int) -> bytes:
            return bytes(n)

    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info: Endless())
    with pytest.raises(ArchiveError) as caught:
        safe_extract(archive, tmp_path / "out", limits=ExtractLimits(max_entry_bytes=3 << 20))
    assert str(caught.value) == (
        f"{P}: entry 'cats/a.jpg' expands past 3,145,728 bytes while extracting although its "
        f"header says {len(PHOTO):,}; this looks like a zip bomb"
    )
    assert (tmp_path / "out/cats/a.jpg").stat().st_size <= 3 << 20


@pytest.fixture(scope="module")
def bomb_stream() -> tuple[bytes, int]:
    """Raw deflate of 256 MiB of zeros (about 250 KB) and its CRC."""
    packer, crc, parts = zlib.compressobj(9, zlib.DEFLATED, -15), 0, []
    block = bytes(1 << 20)
    for _ in range(256):
        parts.append(packer.compress(block))
        crc = zlib.crc32(block, crc)
    parts.append(packer.flush())
    return b"".join(parts), crc


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

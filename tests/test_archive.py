"""safe_extract: unsafe zip entries and zip bombs are refused, naming the entry."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from builders import lying_zip, symlink_info, zip_entries

from catdog.data.archive import ArchiveError, ExtractLimits, safe_extract


def is_zip(path: Path) -> bool:
    """Whether ``path`` is a file that looks like a zip archive."""
    return path.is_file() and zipfile.is_zipfile(path)


def test_extracts_files_and_skips_macos_junk_and_dotfiles(tmp_path: Path) -> None:
    archive = zip_entries(
        tmp_path / "ok.zip",
        [
            ("top/cats/a.jpg", b"aaa"),
            ("top/dogs/", b""),
            ("top/dogs/b.jpg", b"bbbb"),
            ("__MACOSX/top/._a.jpg", b"fork"),
            ("top/.DS_Store", b"finder"),
            ("top/.hidden/x.jpg", b"x"),
        ],
    )
    done = []
    result = safe_extract(archive, tmp_path / "out", progress=lambda d, t, m: done.append((d, t)))
    rel = sorted(p.relative_to(tmp_path / "out").as_posix() for p in result.files)
    assert result.skipped == []
    assert rel == ["top/cats/a.jpg", "top/dogs/b.jpg"]
    assert (tmp_path / "out/top/dogs/b.jpg").read_bytes() == b"bbbb"
    assert not (tmp_path / "out/__MACOSX").exists()
    assert done[-1] == (2, 2)
    assert is_zip(archive) and not is_zip(tmp_path / "out/top/cats/a.jpg")


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("/etc/evil.txt", "absolute path"),
        ("../evil.txt", "'..'"),
        ("cats/../../evil.txt", "'..'"),
        ("C:/Windows/evil.txt", "absolute path"),
        ("..\\evil.txt", "'..'"),
    ],
)
def test_entries_outside_the_folder_are_refused(tmp_path: Path, entry: str, words: str) -> None:
    archive = zip_entries(tmp_path / "evil.zip", [("cats/ok.jpg", b"ok"), (entry, b"pwned")])
    with pytest.raises(ArchiveError, match=words) as caught:
        safe_extract(archive, tmp_path / "out" / "inner")
    assert repr(entry) in str(caught.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
    # refused before writing a byte
    assert not (tmp_path / "out" / "inner").exists()


def test_symlink_entries_are_refused(tmp_path: Path) -> None:
    archive = zip_entries(tmp_path / "link.zip", [(symlink_info("cats/link.jpg"), b"/etc/passwd")])
    with pytest.raises(ArchiveError, match=r"'cats/link\.jpg' is a symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "cats").exists()


def test_bomb_by_declared_total_size_is_refused(tmp_path: Path) -> None:
    archive = zip_entries(tmp_path / "big.zip", [(f"f{i}.bin", bytes(300_000)) for i in range(4)])
    limits = ExtractLimits(max_total_bytes=1_000_000, max_ratio=10_000)
    with pytest.raises(ArchiveError, match=r"more than 1,000,000 bytes.*'f3\.bin'.*zip bomb"):
        safe_extract(archive, tmp_path / "out", limits=limits)


def test_bomb_by_compression_ratio_is_refused(tmp_path: Path) -> None:
    archive = zip_entries(tmp_path / "bomb.zip", [("zeros.bin", bytes(4 << 20))])
    with pytest.raises(ArchiveError, match=r"'zeros.bin' would expand [\d,]+×.*zip bomb"):
        safe_extract(archive, tmp_path / "out")


def test_small_repetitive_files_are_not_mistaken_for_bombs(tmp_path: Path) -> None:
    archive = zip_entries(tmp_path / "text.zip", [("notes.txt", b"a" * 100_000)])
    [path] = safe_extract(archive, tmp_path / "out").files
    assert path.stat().st_size == 100_000


def test_headers_that_lie_about_size_are_caught_while_extracting(tmp_path: Path) -> None:
    archive = lying_zip(tmp_path / "liar.zip", "big.bin", real=3 << 20, claim=1000)
    with pytest.raises(ArchiveError, match=r"'big\.bin'"):
        safe_extract(archive, tmp_path / "out")
    written = tmp_path / "out" / "big.bin"
    assert not written.exists() or written.stat().st_size <= 1000


def test_not_a_zip_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "photos.zip"
    fake.write_text("not a zip")
    with pytest.raises(ArchiveError, match=r"photos\.zip is not a readable zip file"):
        safe_extract(fake, tmp_path / "out")

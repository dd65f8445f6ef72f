"""Where a zip's entries lie in the file, and how much the whole archive claims to hold.

Python's :mod:`zipfile` reads each entry from the offset the central directory gives and
checks nothing across entries, so a crafted archive can point many entries at one stretch of
compressed data (Fifield's "better zip bomb"): each entry passes every per-entry check, and
together 164 kB unpack to a gigabyte. :func:`check_layout` reads each entry's local header and
refuses an archive whose entries' data overlap, or lie past its central directory, and one
whose declared total is absurd next to its own size (photos barely compress).
"""

from __future__ import annotations

import itertools
import struct
import unicodedata
import zipfile
from pathlib import PurePosixPath
from typing import IO

_LOCAL = struct.Struct("<4s5H3L2H")  # local file header: 30 bytes + name + extra
# The whole archive's declared size over its real size; photos compress ~1×, text ~5×.
MAX_ARCHIVE_RATIO = 50.0
# ...judged only for archives declaring at least this much, so a small zip of text files
# or empty-ish files does not trip it.
RATIO_MIN_BYTES = 64 * 1024**2


class LayoutError(ValueError):
    """Entries that overlap, or lie where no entry may; the message names the archive."""


def _span(f: IO[bytes], info: zipfile.ZipInfo) -> tuple[int, int]:
    """The bytes an entry takes in the file: its local header, name, extra field and data."""
    try:
        f.seek(info.header_offset)
        head = f.read(_LOCAL.size)
    except (OSError, ValueError, OverflowError):  # an offset outside the file: zipfile says so
        head = b""
    if len(head) < _LOCAL.size:
        return info.header_offset, info.header_offset + _LOCAL.size  # zipfile says it is cut
    fields = _LOCAL.unpack(head)
    end = info.header_offset + _LOCAL.size + fields[9] + fields[10] + info.compress_size
    return info.header_offset, end


def check_layout(f: IO[bytes], infos: list[zipfile.ZipInfo], archive: str, size: int) -> None:
    """Refuse entries whose data overlap, and an archive
    that declares more than :data:`MAX_ARCHIVE_RATIO` times its size.

    Args:
        f: the open archive.
        infos: its entries, as zipfile read them.
        archive: the archive's name in messages.
        size: the archive's size in bytes.

    Raises:
        LayoutError: the sentence to show.
    """
    declared = sum(info.file_size for info in infos)
    if declared >= RATIO_MIN_BYTES and declared > MAX_ARCHIVE_RATIO * size:
        raise LayoutError(
            f"{archive} declares {declared:,} bytes of contents in {size:,} bytes "
            f"({declared / max(size, 1):,.0f}×; photos barely compress, the limit is "
            f"{MAX_ARCHIVE_RATIO:,.0f}×); this looks like a zip bomb"
        )
    spans = sorted((*_span(f, info), info.filename) for info in infos)
    for (_start, end, name), (next_start, _, next_name) in itertools.pairwise(spans):
        if next_start < end:
            raise LayoutError(
                f"{archive}: entries {name!r} and {next_name!r} share bytes (their data "
                "overlap), a trick of zip bombs; the archive is refused, re-create it"
            )


# Archives inside an archive: never unpacked (each would need every check again).
NESTED_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".jar")


def nested_archive(parts: tuple[str, ...]) -> bool:
    """Whether an entry's name says it is an archive itself."""
    return parts[-1].lower().endswith(NESTED_SUFFIXES)


class PathClaims:
    """The paths an archive's entries are extracted to, the same on every disk.

    Each part is put in composed form (NFC), so a folder written in decomposed form (as macOS
    writes ``ä``) is the same folder as its composed twin, as a normalizing disk has it. Two
    names differing only in case are one name on Windows' and macOS' disks but two on Linux':
    no answer is right on both, so such an archive is refused. A file whose name repeats
    another's once composed is extracted beside it as ``NAME-2.EXT``.
    """

    def __init__(self, archive: str) -> None:
        self.archive = archive
        self.spelled: dict[tuple[str, ...], tuple[str, ...]] = {}  # casefolded → NFC parts
        self.files: set[tuple[str, ...]] = set()

    def claim(self, parts: tuple[str, ...], shown: str, is_file: bool) -> tuple[str, ...]:
        """The parts to extract an entry to (see the class docstring).

        Raises:
            LayoutError: the entry's path differs from another's only in case.
        """
        nfc = tuple(unicodedata.normalize("NFC", part) for part in parts)
        for depth in range(1, len(nfc) + 1):
            prefix = nfc[:depth]
            folded = tuple(part.casefold() for part in prefix)
            seen = self.spelled.setdefault(folded, prefix)
            if seen != prefix:
                raise LayoutError(
                    f"{self.archive}: entry {shown!r} is named like {'/'.join(seen)!r} but for "
                    "case; most disks hold the two as one, so which is meant is ambiguous. "
                    "Rename one and re-create the archive"
                )
        if not is_file:
            return nfc
        final, k = nfc, 1
        while final in self.files:
            k += 1
            path = PurePosixPath(nfc[-1])
            final = (*nfc[:-1], f"{path.stem}-{k}{path.suffix}")
        self.files.add(final)
        return final

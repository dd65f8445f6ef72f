"""Image sizes remembered between visits: one small file per dataset in the data home.

Reading 4000 image headers takes a second or more on a small CPU; a dataset's sizes are asked
for on every server start and every new dataset version. :class:`HeaderCache` keeps each
file's ``(size in bytes, modification time, width, height)`` in
``<data home>/cache/image-sizes/<hash of the folder>.json``, so a header is read again only for
a file that is new or changed (same name, other size or time). Never in the dataset itself;
a cache that cannot be read or written is simply not used.
Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from catdog.data.paths import data_home

CACHE_FOLDER = ("cache", "image-sizes")
KEEP_FILES = 64  # datasets remembered; the least recently written go first
_FORMAT = 1


class HeaderCache:
    """The remembered headers of one dataset folder; :meth:`save` writes them back if changed.

    Args:
        root: the dataset folder.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = str(Path(root).resolve())
        name = hashlib.sha256(self.root.encode()).hexdigest()[:24]
        self.path = data_home().joinpath(*CACHE_FOLDER, f"{name}.json")
        self._old = self._read()
        self._new: dict[str, list] = {}

    def _read(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        ok = isinstance(data, dict) and data.get("format") == _FORMAT
        if not ok or data.get("root") != self.root or not isinstance(data.get("files"), dict):
            return {}
        return data["files"]

    def get(self, key: str, stat: os.stat_result) -> tuple[int | None, int | None] | None:
        """``(width, height)`` remembered for ``key`` if the file is unchanged (``(None,
        None)``: remembered as unreadable), else None."""
        entry = self._old.get(key)
        if (
            isinstance(entry, list)
            and len(entry) == 4
            and entry[:2] == [stat.st_size, stat.st_mtime_ns]
        ):
            self._new[key] = entry
            return entry[2], entry[3]
        return None

    def put(self, key: str, stat: os.stat_result, width: int | None, height: int | None) -> None:
        """Remember a header just read (``None`` sizes: not a readable image)."""
        self._new[key] = [stat.st_size, stat.st_mtime_ns, width, height]

    def save(self) -> None:
        """Write the cache if anything changed (atomically), then forget the oldest files."""
        if self._new == self._old:
            return
        data = {"format": _FORMAT, "root": self.root, "files": self._new}
        with contextlib.suppress(OSError):  # a read-only data home: no cache, same answers
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(data, out, separators=(",", ":"))
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            _prune(self.path.parent)


def _prune(folder: Path) -> None:
    """Keep the :data:`KEEP_FILES` most recently written cache files."""
    dated = []
    for file in folder.glob("*.json"):
        with contextlib.suppress(OSError):  # another server may prune at the same moment
            dated.append((file.stat().st_mtime, file))
    for _, old in sorted(dated, reverse=True)[KEEP_FILES:]:
        with contextlib.suppress(OSError):
            old.unlink()

"""Heatmap files of ``predict --heatmaps``: extras written after the predictions are safe.

Each heatmap is a new PNG, never overwriting a file and never written through a link planted
where it goes, and never left half-written: it is written beside its place and linked into it.
The first heatmap that cannot be written (a full disk, a read-only folder) stops the others
and is said in one line; the predictions themselves are never lost to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catdog.data.images import ImageError, open_rgb
from catdog.data.names import portable_name
from catdog.inference.explain import overlay
from catdog.safe_files import os_words, write_new_file


def write_heatmap(folder: Path, image: Path, heat: Any) -> Path:
    """Save ``image`` with ``heat`` over it as a new PNG in ``folder``: never overwriting,
    never through a link planted there, never half a file (written beside it, then linked
    into place)."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = overlay(open_rgb(image), heat)
    n = 1
    while True:
        suffix = ".heatmap.png" if n == 1 else f".heatmap-{n}.png"
        target = folder / portable_name(image.stem, suffix)
        try:
            write_new_file(target, lambda tmp: picture.save(tmp, "PNG"), replace=False)
            return target
        except FileExistsError:  # a file, or a link, is there already: the next name
            n += 1


class HeatmapWriter:
    """Writes the heatmaps of ``predict --heatmaps`` into ``folder`` (None: none asked for).

    A heatmap is an extra: the first one that cannot be written (a full disk, a read-only
    folder) stops the others and becomes :attr:`problem`, one line said after the predictions,
    which are printed whatever happens. No partial file is ever left.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder, self.problem = folder, ""

    def write(self, image: Path, heat: Any) -> Path | None:
        """Save ``image`` with ``heat`` over it; its path, or None (none asked, or failed)."""
        if self.folder is None or heat is None or self.problem:
            return None
        try:
            return write_heatmap(self.folder, image, heat)
        except ImageError as exc:
            self.problem = f"heatmap of {image.name} not written: {exc}"
        except OSError as exc:
            self.problem = (f"heatmaps not written into {self.folder} ({os_words(exc)}); the "
                            "predictions above are complete")  # fmt: skip
        return None

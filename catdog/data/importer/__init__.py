"""Importing photos into a dataset, from the layouts people have.

:func:`import_dataset` turns any of these, given as a folder or a .zip, into the dataset shape
that :mod:`catdog.data.datasets` reads (``DIR/{train,validation,test}/<class>/<images>``):

* class folders (``cats/``, ``dogs/`` …), already split into train/validation/test or not
  (``val``/``valid`` are accepted for validation, and a single wrapping folder is looked into);
* Kaggle's "Dogs vs. Cats" ``train/``: one flat folder of ``cat.N.jpg`` and ``dog.N.jpg``;
* Microsoft's ``PetImages/Cat`` and ``PetImages/Dog`` (with its empty, broken and BMP files).

Every file is fully decoded; unusable ones are skipped and listed in the report, never silently
dropped. The source is only read. The dataset is built in a hidden sibling folder and renamed
into place at the end, so a crash never leaves half a dataset behind.

The package, in the order an import goes: :mod:`.checks` (the request), :mod:`.layouts` (finding
the images), :mod:`.ingest` (decoding each one), :mod:`.splits` (which split each goes to),
:mod:`.publish` (into place), :mod:`.report` (what was done); :mod:`.build` runs them
(:func:`import_dataset`) and :mod:`.sweep` clears what killed imports left behind.
"""

from __future__ import annotations

from catdog.data.importer.build import import_dataset
from catdog.data.importer.report import JPEG_QUALITY, ImportReport, SkippedFile
from catdog.data.importer.splits import (
    DEFAULT_FRACTIONS,
    SEED_COUNTS,
    SplitSpec,
    check_split,
    parse_split,
)
from catdog.data.importer.sweep import (
    STALE_AFTER_MINUTES,
    UPLOAD_DIR_PREFIX,
    sweep_stale_imports,
    upload_dir_prefix,
    work_dir_prefix,
)

__all__ = [
    "DEFAULT_FRACTIONS",
    "JPEG_QUALITY",
    "SEED_COUNTS",
    "STALE_AFTER_MINUTES",
    "UPLOAD_DIR_PREFIX",
    "ImportReport",
    "SkippedFile",
    "SplitSpec",
    "check_split",
    "import_dataset",
    "parse_split",
    "sweep_stale_imports",
    "upload_dir_prefix",
    "work_dir_prefix",
]

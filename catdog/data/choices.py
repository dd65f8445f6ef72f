"""Which datasets there are to choose from, and naming and importing a new one.

:func:`dataset_choices` lists the demo dataset first (even before it is generated), then every
imported one, each as a :class:`DatasetChoice` that :func:`describe` says in one line.
:func:`dataset_name_for` suggests a name for a folder or an uploaded .zip,
:func:`check_new_dataset_name` checks one, and :func:`import_named` imports under it.
Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from catdog.data.datasets import MANIFEST_NAME, SPLITS, DatasetError, DatasetInfo, list_datasets
from catdog.data.importer import ImportReport, SplitSpec, import_dataset, upload_dir_prefix
from catdog.data.paths import (
    DEMO_DATASET_NAME,
    dataset_roots,
    datasets_dir,
    demo_dataset_dir,
    is_shared,
    shared_datasets_dir,
)
from catdog.policy import HostedLimitError, current_policy
from catdog.progress import ProgressFn

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class DatasetChoice:
    """A dataset that can be made the active one.

    Attributes:
        name: folder name (``"demo"`` for the built-in one).
        path: the dataset folder (the demo's may not exist yet).
        info: its counts, or None for the demo dataset before it is generated.
    """

    name: str
    path: Path
    info: DatasetInfo | None

    @property
    def is_demo(self) -> bool:
        """True for the built-in demo dataset."""
        return self.path == demo_dataset_dir()

    @property
    def example(self) -> bool:
        """True for a shared dataset seen from a workspace (the demo included): read-only."""
        return is_shared(self.path)


def demo_ready() -> bool:
    """True once the built-in demo dataset has been generated."""
    return (demo_dataset_dir() / MANIFEST_NAME).is_file()


def dataset_choices() -> list[DatasetChoice]:
    """The demo dataset (generated or not) followed by the other datasets, by name."""
    demo = demo_dataset_dir()
    found = {info.root: info for info in list_datasets()}
    choices = [
        DatasetChoice(DEMO_DATASET_NAME, demo, found.pop(demo, None) if demo_ready() else None)
    ]
    choices += [DatasetChoice(info.name, root, info) for root, info in found.items()]
    return choices


def describe(choice: DatasetChoice) -> str:
    """One line for people: ``demo — cats, dogs — 600 train · 300 validation · 300 test``."""
    if choice.info is None:
        return f"{choice.name} — built-in cartoon cats and dogs (drawn on first use)"
    totals = " · ".join(f"{choice.info.totals[s]:,} {s}" for s in SPLITS)
    shared = " (shared example)" if choice.example and not choice.is_demo else ""
    return f"{choice.name}{shared} — {', '.join(choice.info.classes)} — {totals}"


def _name_taken(name: str) -> bool:
    """Whether a dataset (own or shared) or the demo has this name."""
    return name == DEMO_DATASET_NAME or any((root / name).exists() for root in dataset_roots())


def dataset_name_for(source: str) -> str:
    """Suggest a dataset name from an uploaded file or folder name: ``"My Pets.zip"`` →
    ``"my-pets"``; a name already taken gets ``-2``, ``-3`` …"""
    stem = Path(source.rstrip("/\\")).name
    stem = re.sub(r"\.zip$", "", stem, flags=re.IGNORECASE)
    base = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:48] or "dataset"
    name, k = base, 1
    while _name_taken(name):
        k += 1
        name = f"{base}-{k}"
    return name


def check_new_dataset_name(name: str) -> Path:
    """Check a name for a new dataset and return its folder in the data home.

    Whether the folder is free is left to :func:`catdog.data.importer.import_dataset`, which never
    overwrites a dataset (and says so).

    Raises:
        DatasetError: the name is not a plain folder name, or is the demo dataset's.
    """
    name = name.strip()
    if not _NAME_OK.match(name):
        raise DatasetError(
            f"dataset name {name!r} is not usable: use 1–64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    if name == DEMO_DATASET_NAME:
        raise DatasetError(f"{name!r} is the built-in demo dataset's name; choose another one")
    if datasets_dir() != shared_datasets_dir() and (shared_datasets_dir() / name).exists():
        raise DatasetError(f"{name!r} is a shared example dataset's name; choose another one")
    return datasets_dir() / name


def import_named(
    source: str | Path | tuple[str, bytes],
    name: str,
    *,
    split: SplitSpec = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> tuple[ImportReport, str]:
    """Import a folder, a .zip, or an uploaded .zip's bytes as the data home's dataset ``name``.

    An upload is written to a temporary file first; messages name it as uploaded (``pets.zip``)
    rather than by that temporary path.

    Args:
        source: a folder or .zip path, or ``(file name, bytes)`` of an uploaded .zip.
        name: the new dataset's name (see :func:`check_new_dataset_name`).
        split, seed, progress: as for :func:`catdog.data.importer.import_dataset`.

    Returns:
        The import report and its summary text.

    Raises:
        DatasetError: the name is not usable, the source cannot be imported, or the dataset
            exists (catdog never overwrites one); the message says which.
        catdog.policy.HostedLimitError: in hosted mode, a folder or path of the server, an
            upload or dataset over a cap, or a read-only visitor; messages name no server
            folder.
    """
    policy = current_policy()
    policy.check_writable(f"importing {name}")
    out = check_new_dataset_name(name)
    with (  # the slot before the upload is written: one at a time, even on the temporary disk
        policy.job_slot("import"),
        tempfile.TemporaryDirectory(prefix=upload_dir_prefix()) as tmp,
    ):
        # This upload's temporary folder, and earlier ones quoted from a dataset's manifest.
        hide = partial(
            re.sub, re.escape(tempfile.gettempdir() + os.sep) + r"catdog-upload-[^/\\]+[/\\]", ""
        )
        if isinstance(source, tuple):
            filename, data = source
            policy.check_upload(len(data), Path(filename).name)  # before writing it anywhere
            policy.check_quota(len(data), Path(filename).name)
            path = Path(tmp) / (Path(filename).name or "upload.zip")
            path.write_bytes(data)
        else:
            path = Path(source).expanduser()
        try:
            report = import_dataset(path, out, split=split, seed=seed, progress=progress)
        except (DatasetError, HostedLimitError) as exc:
            raise type(exc)(policy.shown(hide(str(exc)))) from None
        return report, policy.shown(hide(report.summary()))

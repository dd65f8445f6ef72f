"""What every command shares: the usage error, exit codes, naming a dataset."""

from __future__ import annotations

from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def resolve_dataset(value: str) -> Path:
    """Turn ``--data`` into a dataset folder: a path, a name under the data home, or ``demo``.

    ``demo`` (the built-in dataset) is generated on first use.
    """
    from catdog.data.paths import DEMO_DATASET_NAME, datasets_dir

    if value == DEMO_DATASET_NAME:
        from catdog.data.demo import ensure_demo_dataset

        return ensure_demo_dataset()
    path = Path(value).expanduser()
    if path.is_dir():
        return path
    named = datasets_dir() / value
    if named.is_dir():
        return named
    raise CLIError(
        f"dataset {value!r} not found: it is neither a folder nor a dataset name in "
        f"{datasets_dir()} (see `python -m catdog datasets`)"
    )


def default_out(source: Path) -> Path:
    from catdog.data.paths import datasets_dir

    stem = source.resolve().name.removesuffix(".zip") or "dataset"  # "..", "." have names too
    return datasets_dir() / stem


def fmt_accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"

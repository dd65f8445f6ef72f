"""The parser of every command and :func:`main`, which turns any error into one line."""

from __future__ import annotations

import argparse
import os
import sys

from catdog.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CLIError
from catdog.cli.datasets import add_dataset_commands
from catdog.cli.photos import add_builder_commands
from catdog.cli.results import add_model_commands
from catdog.cli.training import add_training_commands
from catdog.failures import TrainingFailed
from catdog.system import disk_full


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m catdog",
        description="Train a cat-vs-dog (or any folder-per-class) image classifier.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_dataset_commands(sub)
    add_builder_commands(sub)
    add_training_commands(sub)
    add_model_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.debug:
        os.environ["CATDOG_DEBUG"] = "1"
    try:
        from catdog.data.importer import sweep_stale_imports

        sweep_stale_imports()  # what killed imports left behind (cheap: one folder listing)
        return int(args.func(args))
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        return 130
    except TrainingFailed as exc:
        if os.environ.get("CATDOG_DEBUG"):
            raise
        print(f"error: training failed: {exc} (the run folder's error.log has the details; "
              "--debug shows them here)", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours. Stop writing quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (CLIError, ValueError, FileNotFoundError, FileExistsError) as exc:
        # Library errors are ValueError subclasses whose message says what to do;
        # CATDOG_DEBUG=1 shows the traceback instead.
        if os.environ.get("CATDOG_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a folder we may not write: one line, not a traceback
        if os.environ.get("CATDOG_DEBUG"):
            raise
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _os_error(exc: OSError) -> str:
    """One line for an operating-system error no command turned into its own message."""
    where = f" ({exc.filename})" if exc.filename else ""
    if disk_full(exc):
        return f"the disk is full{where}: free some space and try again"
    return f"{exc.strerror or exc}{where}"

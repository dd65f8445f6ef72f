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
from catdog.failures import TrainingFailed, one_line
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
        _say_error(f"training failed: {exc} (the run folder's error.log has the details; "
                   "--debug shows them here)")  # fmt: skip
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours. Stop writing quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (CLIError, ValueError) as exc:
        # Library errors are ValueError subclasses whose message says what to do;
        # CATDOG_DEBUG=1 shows the traceback instead.
        if os.environ.get("CATDOG_DEBUG"):
            raise
        _say_error(str(exc))
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a folder we may not write: one line, not a traceback
        if os.environ.get("CATDOG_DEBUG"):
            raise
        _say_error(_os_error(exc))
        return EXIT_USAGE if isinstance(exc, (FileNotFoundError, FileExistsError)) else EXIT_FAILED
    except Exception as exc:  # whatever a library beneath us raises: one line, not a traceback
        if os.environ.get("CATDOG_DEBUG"):
            raise
        _say_error(f"{one_line(exc)} (unexpected; --debug shows the details)")
        return EXIT_FAILED


def _say_error(message: str) -> None:
    """Print an error as one line, every control character or escape sequence a file or
    folder name brought shown escaped (:func:`catdog.data.names.shown`)."""
    from catdog.data.names import shown

    print(f"error: {shown(message)}", file=sys.stderr)


def _os_error(exc: OSError) -> str:
    """One line for an operating-system error no command turned into its own message: the
    file named, the problem in words (never ``[Errno N]``)."""
    from catdog.safe_files import FileProblem, os_words

    if isinstance(exc, FileProblem):
        return str(exc)
    words = os_words(exc)
    if disk_full(exc):
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"{words}{where}: free some space and try again"
    return f"{exc.filename}: {words}" if exc.filename else words

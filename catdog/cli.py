"""The command line: ``python -m catdog COMMAND ...`` (filled in by each capability)."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m catdog", description=__doc__)
    parser.add_subparsers(dest="command", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    build_parser().parse_args(argv)
    return 0

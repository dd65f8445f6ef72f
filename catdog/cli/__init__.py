"""The command line: ``python -m catdog COMMAND ...`` — every headless task of catdog.

Human-readable progress and tables go to standard error or standard output as noted per
command; results that scripts read (a run id, ``--json`` output) go to standard output alone.
Heavy modules (TensorFlow) are imported inside the commands that need them, so ``--help``,
``runs`` and dataset commands start instantly.

The package, by command group: :mod:`.datasets`, :mod:`.training`, :mod:`.results`; :mod:`.main`
builds the parser and runs a command; :mod:`.common` holds what they share.
"""

from __future__ import annotations

from catdog.cli.main import build_parser, main
from catdog.cli.training import train_config

__all__ = ["build_parser", "main", "train_config"]

"""`python -m catdog ...`: the command line."""

from catdog.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""User-facing failures: one line that names the file or param and what was expected."""

import functools
import sys


class FerError(Exception):
    """A problem with the user's input or setup; printed as one line, never as a traceback."""


def one_line(err: BaseException | str, last: bool = False) -> str:
    """A library's (often multi-line) error message as one line: its first line, or its last with last=True.

    Used wherever a third-party error is wrapped in a FerError, so every message reads the same way.
    """
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return (lines[-1] if last else lines[0]) if lines else type(err).__name__


def one_line_errors(main):
    """Run a stage/CLI entry point, turning a FerError into one line on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except FerError as err:
            print(f"error: {one_line(err)}", file=sys.stderr)
            sys.exit(2)

    return wrapper

"""User-facing failures: one line that names the file or param and what was expected."""

import functools
import sys


class FerError(Exception):
    """A problem with the user's input or setup; printed as one line, never as a traceback."""


def one_line_errors(main):
    """Run a stage/CLI entry point, turning a FerError into one line on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except FerError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper

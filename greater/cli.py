"""Turn the errors a user can fix into one line that says what is wrong and how to fix it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

log = logging.getLogger("greater")


class UserError(ValueError):
    """Bad input from the user's config or data; its message names the problem and the fix."""


@contextlib.contextmanager
def configure_errors() -> Iterator[None]:
    """Print user errors as `error: <message>` and exit 1; set GREATER_DEBUG=1 for the traceback."""
    try:
        yield
    except (ValueError, FileNotFoundError, ImportError) as err:
        if os.environ.get("GREATER_DEBUG"):
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(1) from None

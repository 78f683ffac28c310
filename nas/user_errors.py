"""Which failures are the user's to fix, and how every command line words them.

Errors that a user's input or environment causes are ``search_space.UserError``s
(a workdir, a dataset, a Ray address, an evaluator, a corrupt file, a bad
flag or config), caught by type; an ``OSError`` about a named path (missing,
no permission, disk full) counts too. They end a command with one line on
stderr and the error's exit status, never a traceback; anything else is a bug
and keeps its traceback. ``search_space.errors`` imports nothing, so the
command lines recognise these errors without importing TensorFlow or Ray.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from search_space.errors import UserError


def is_path_error(e: BaseException) -> bool:
    """An OSError about a named path: missing, not a directory, no permission, disk full..."""
    return isinstance(e, OSError) and e.filename is not None


def is_user_error(e: BaseException) -> bool:
    """Whether ``e`` is the user's to fix: a ``UserError`` or a path error."""
    return isinstance(e, UserError) or is_path_error(e)


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (a path error as ``PATH: reason``)."""
    if is_path_error(e):
        assert isinstance(e, OSError)
        target = f" -> {e.filename2}" if e.filename2 else ""
        return f"{e.filename}{target}: {e.strerror or type(e).__name__}"
    text = str(e).strip()
    return " ".join(text.splitlines()) if text else type(e).__name__


def run_reporting_errors(label: str, fn: Callable[[], int | None]) -> int:
    """Runs ``fn`` and returns its exit status; a user's error becomes ``LABEL: error: MESSAGE`` and its status.

    The one error ladder of ``nas-search`` and ``nas-train``: a ``UserError``
    exits with its ``exit_status`` (2, or 1 for a trial that failed in
    training), a path error with 2; anything else propagates (a bug).
    """
    try:
        return fn() or 0
    except Exception as e:
        if not is_user_error(e):
            raise
        print(f"{label}: error: {one_line(e)}", file=sys.stderr)
        return e.exit_status if isinstance(e, UserError) else 2

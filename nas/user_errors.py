"""Which failures are the user's to fix, and how the command lines word them.

Errors that a user's input or environment causes (a workdir, a dataset, a Ray address, an evaluator,
a corrupt file, a path that cannot be created or opened) end a command with one line on stderr and
exit status 2, never a traceback; anything else is a bug and keeps its traceback. Project errors are
matched by class name so that the command lines need not import TensorFlow or Ray to recognise them.
"""

from __future__ import annotations

USER_ERRORS = {
    "WorkdirError",
    "SearchError",
    "ExecutorError",
    "EvaluatorError",
    "TrialLogError",
    "ControllerStateError",
    "DataError",
    "TrainingError",
}


def is_user_error(e: BaseException) -> bool:
    """Whether ``e`` is one of ``USER_ERRORS`` (or a subclass), or a file-system error on a path."""
    return is_path_error(e) or any(cls.__name__ in USER_ERRORS for cls in type(e).__mro__)


def is_path_error(e: BaseException) -> bool:
    """An OSError about a named path: missing, not a directory, no permission, disk full..."""
    return isinstance(e, OSError) and e.filename is not None


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (a path error as ``PATH: reason``)."""
    if is_path_error(e):
        assert isinstance(e, OSError)
        target = f" -> {e.filename2}" if e.filename2 else ""
        return f"{e.filename}{target}: {e.strerror or type(e).__name__}"
    text = str(e).strip()
    return " ".join(text.splitlines()) if text else type(e).__name__

"""Errors a user can cause, and the one error type of the search space.

``UserError`` is the base of every error that a user's input or environment
causes anywhere in the project (a bad flag, config, architecture file,
dataset, workdir, Ray address, evaluator or checkpoint). The command lines
catch it by type and print its message as one line, exiting with
``exit_status``; anything else is a bug and keeps its traceback. It lives here,
in the package that imports nothing, so that every package can raise it and
the command lines can catch it without importing TensorFlow or Ray.
"""


class UserError(Exception):
    """An error the user can fix; the message says what and where, on one line.

    Attributes:
      exit_status: the command lines' exit status for it: 2 (bad input) unless
        a subclass says otherwise.
    """

    exit_status = 2


class ArchitectureError(UserError, ValueError):
    """An architecture, a decision sequence or an architecture file is invalid.

    The message names the exact place (block index and field) and the allowed
    values, so that it can be shown to a user as is.
    """

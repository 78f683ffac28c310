"""The one error type of the search space: every invalid input ends here."""


class ArchitectureError(ValueError):
    """An architecture, a decision sequence or an architecture file is invalid.

    The message names the exact place (block index and field) and the allowed
    values, so that it can be shown to a user as is.
    """

"""Errors of proxy training (``UserError``s: the command lines print them as one line)."""

from __future__ import annotations

from search_space.errors import UserError


class TrainingError(UserError, RuntimeError):
    """A trial cannot be trained or evaluated; the message says why (``nas-train`` exits 1)."""

    exit_status = 1


class NonFiniteLossError(TrainingError):
    """The loss or the gradients became NaN or infinite."""

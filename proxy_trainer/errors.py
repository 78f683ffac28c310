"""Errors of proxy training: the CLI and the search report them by class name."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """A trial cannot be trained or evaluated; the message says why."""


class NonFiniteLossError(TrainingError):
    """The loss or the gradients became NaN or infinite."""

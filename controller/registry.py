"""Search algorithms by name: registration and the known names (``controller.factory`` loads the classes).

Kept apart from ``controller.base`` so that configs can list and check names
without importing an algorithm (the policy networks need TensorFlow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.base import Controller

REGISTERED: dict[str, Callable[..., Controller]] = {}


def register_controller(name: str):
    """Class decorator: registers a controller under ``name``."""

    def decorate(cls):
        if name in REGISTERED or name in BUILTIN_ALGORITHMS:
            raise ValueError(f"controller {name!r} is registered twice")
        cls.name = name
        REGISTERED[name] = cls
        return cls

    return decorate


# The built-in algorithms, registered on first need by ``controller.factory``; they do not import it.
BUILTIN_ALGORITHMS = ("evolution", "ppo", "random", "reinforce")


def known_controller_names() -> list[str]:
    """Built-in and registered names, without importing the algorithms (no TensorFlow)."""
    return sorted(set(BUILTIN_ALGORITHMS) | set(REGISTERED))

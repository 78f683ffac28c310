"""Search algorithms by name: registration, and the built-in ones loaded on first need.

Kept apart from ``controller.base`` so that configs can list and check names
without importing an algorithm (the policy networks need TensorFlow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.base import Controller

_REGISTRY: dict[str, Callable[..., Controller]] = {}


def register_controller(name: str):
    """Class decorator: registers a controller under ``name``."""

    def decorate(cls):
        if name in _REGISTRY or name in BUILTIN_ALGORITHMS:
            raise ValueError(f"controller {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


# The built-in algorithms, registered on first need (``_load_builtin``); they do not import this module.
BUILTIN_ALGORITHMS = ("evolution", "ppo", "random", "reinforce")


def known_controller_names() -> list[str]:
    """Built-in and registered names, without importing the algorithms (no TensorFlow)."""
    return sorted(set(BUILTIN_ALGORITHMS) | set(_REGISTRY))


def _load_builtin() -> None:
    """Imports and registers the built-in algorithms, on first need (their ``name`` is a class attribute)."""
    from controller.evolution import RegularizedEvolution
    from controller.ppo import PPOController
    from controller.random_search import RandomSearch
    from controller.reinforce import ReinforceController

    for cls in (RegularizedEvolution, PPOController, RandomSearch, ReinforceController):
        _REGISTRY.setdefault(cls.name, cls)


def controller_names() -> list[str]:
    """Registered algorithm names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def controller_class(name: str) -> Callable[..., Controller]:
    """The class registered under ``name``.

    Raises:
      ValueError: unknown name, listing the known ones.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]

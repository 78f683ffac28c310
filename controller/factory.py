"""``build_controller``: the configured search algorithm (kept apart from ``controller.config``,
which the algorithms import for their config groups)."""

from __future__ import annotations

from collections.abc import Callable

from controller.base import Controller
from controller.config import ControllerConfig
from controller.registry import REGISTERED
from search_space import DecisionEncoding


def build_controller(config: ControllerConfig, encoding: DecisionEncoding, seed: int) -> Controller:
    """Builds the configured search algorithm over ``encoding``.

    Args:
      config: the controller section (validated here).
      encoding: the decision encoding of the search space.
      seed: seeds everything the controller draws.

    Returns:
      A fresh controller; ``set_state`` continues a saved one.

    Raises:
      ControllerConfigError: an invalid config, naming the field.
    """
    from controller.evolution import RegularizedEvolution
    from controller.ppo import PPOController
    from controller.random_search import RandomSearch
    from controller.reinforce import ReinforceController

    config.validate()
    failure = dict(failure_policy=config.failure_policy, failure_reward=config.failure_reward)
    name = config.algorithm
    if name == "reinforce":
        return ReinforceController(encoding, seed, policy=config.policy, training=config.policy_gradient, **failure)
    if name == "ppo":
        return PPOController(
            encoding, seed, policy=config.policy, training=config.policy_gradient, ppo=config.ppo, **failure
        )
    if name == "evolution":
        return RegularizedEvolution(
            encoding,
            seed,
            population_size=config.evolution.population_size,
            tournament_size=config.evolution.tournament_size,
            **failure,
        )
    if name == "random":
        return RandomSearch(encoding, seed, **failure)
    # An algorithm registered elsewhere takes the shared arguments only.
    return controller_class(name)(encoding, seed, **failure)


def _load_builtin() -> None:
    """Imports and registers the built-in algorithms, on first need (their ``name`` is a class attribute)."""
    from controller.evolution import RegularizedEvolution
    from controller.ppo import PPOController
    from controller.random_search import RandomSearch
    from controller.reinforce import ReinforceController

    for cls in (RegularizedEvolution, PPOController, RandomSearch, ReinforceController):
        REGISTERED.setdefault(cls.name, cls)


def controller_names() -> list[str]:
    """Registered algorithm names, sorted."""
    _load_builtin()
    return sorted(REGISTERED)


def controller_class(name: str) -> Callable[..., Controller]:
    """The class registered under ``name``.

    Raises:
      ValueError: unknown name, listing the known ones.
    """
    _load_builtin()
    if name not in REGISTERED:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(sorted(REGISTERED))}")
    return REGISTERED[name]

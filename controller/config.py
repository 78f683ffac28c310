"""The controller section of an experiment, and the factory that reads it.

Only ``build_controller`` reads a ``ControllerConfig``; the algorithm classes
take plain arguments. Every field is a plain type or a nested frozen
dataclass, so strict ``a.b=v`` overrides apply to it.

Defaults follow NAS-RL (Zoph & Le 2017; docs/proxy_recipe.md#search-procedure)
where it gives a value: 2 LSTM layers of 35 units, weights uniform in
[-0.08, 0.08], Adam at 6e-4, m = 8 results per update. It gives no baseline
decay, entropy weight or clip norm; the values here are ours. Evolution
follows Real et al. 2019 (population 100, tournament 25), PPO Schulman et al.
2017 (clip 0.2).
"""

from __future__ import annotations

import dataclasses
import math

from controller.base import FAILURE_POLICIES, FAILURE_SKIP, Controller
from controller.registry import controller_class, known_controller_names
from search_space import DecisionEncoding
from search_space.errors import UserError

# The algorithms are imported by ``build_controller`` only: configs are read
# by every command, and the policy networks need TensorFlow.


class ControllerConfigError(UserError, ValueError):
    """A controller config field is out of range; the message names it and the allowed values."""


@dataclasses.dataclass(frozen=True)
class PolicyNetworkConfig:
    """The LSTM policy of ``reinforce`` and ``ppo``.

    Attributes:
      lstm_units: units per LSTM layer (NAS-RL: 35).
      lstm_layers: stacked LSTM layers (NAS-RL: 2).
      embedding_size: size of the previous decision's embedding.
      init_range: weights start uniform in [-init_range, init_range] (NAS-RL: 0.08).
    """

    lstm_units: int = 35
    lstm_layers: int = 2
    embedding_size: int = 35
    init_range: float = 0.08


@dataclasses.dataclass(frozen=True)
class PolicyGradientConfig:
    """Training of the LSTM policy, shared by ``reinforce`` and ``ppo``.

    Attributes:
      learning_rate: Adam's learning rate (NAS-RL: 6e-4).
      baseline_decay: decay of the exponential moving average of rewards.
      entropy_weight: weight of the entropy bonus.
      grad_clip_norm: gradients are clipped to this global norm.
      update_every: results per update (NAS-RL's m = 8).
      max_importance_weight: ``reinforce`` only: cap of the importance weight
        of a stale proposal.
    """

    learning_rate: float = 6e-4
    baseline_decay: float = 0.95
    entropy_weight: float = 1e-4
    grad_clip_norm: float = 5.0
    update_every: int = 8
    max_importance_weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO's own hyperparameters.

    Attributes:
      clip_ratio: epsilon of the clipped surrogate (Schulman et al.: 0.2).
      epochs: gradient steps over each batch of ``update_every`` results.
    """

    clip_ratio: float = 0.2
    epochs: int = 4


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
    """Regularized evolution (Real et al. 2019).

    Attributes:
      population_size: members kept (Real et al.: 100).
      tournament_size: members per tournament (Real et al.: 25).
    """

    population_size: int = 100
    tournament_size: int = 25


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
    """Which search algorithm, with what hyperparameters.

    Attributes:
      algorithm: a registered name: ``reinforce`` (the paper's), ``ppo``,
        ``evolution`` or ``random``.
      policy: the LSTM policy network.
      policy_gradient: REINFORCE/PPO training.
      ppo: PPO only.
      evolution: regularized evolution only.
      failure_policy: ``skip`` (a failed trial teaches nothing) or ``fixed``
        (it counts as ``failure_reward``).
      failure_reward: the reward of a failure under ``fixed``.
    """

    algorithm: str = "reinforce"
    policy: PolicyNetworkConfig = PolicyNetworkConfig()
    policy_gradient: PolicyGradientConfig = PolicyGradientConfig()
    ppo: PPOConfig = PPOConfig()
    evolution: EvolutionConfig = EvolutionConfig()
    failure_policy: str = FAILURE_SKIP
    failure_reward: float = 0.0

    def validate(self) -> None:
        """Checks every field the chosen algorithm reads.

        Raises:
          ControllerConfigError: naming the field (``controller.x.y``) and the allowed values.
        """

        def need(ok: bool, key: str, allowed: str) -> None:
            if not ok:
                value = self
                for part in key.split("."):
                    value = getattr(value, part)
                raise ControllerConfigError(f"controller.{key} is {value!r}; {allowed}")

        names = known_controller_names()
        need(self.algorithm in names, "algorithm", f"allowed {', '.join(names)}")
        need(self.failure_policy in FAILURE_POLICIES, "failure_policy", f"allowed {', '.join(FAILURE_POLICIES)}")
        need(math.isfinite(self.failure_reward), "failure_reward", "must be finite")
        p, g = self.policy, self.policy_gradient
        need(p.lstm_units >= 1, "policy.lstm_units", "must be >= 1")
        need(p.lstm_layers >= 1, "policy.lstm_layers", "must be >= 1")
        need(p.embedding_size >= 1, "policy.embedding_size", "must be >= 1")
        need(0 < p.init_range < math.inf, "policy.init_range", "must be > 0")
        need(0 < g.learning_rate < math.inf, "policy_gradient.learning_rate", "must be > 0")
        need(0 <= g.baseline_decay < 1, "policy_gradient.baseline_decay", "must be in [0, 1)")
        need(0 <= g.entropy_weight < math.inf, "policy_gradient.entropy_weight", "must be >= 0")
        need(0 < g.grad_clip_norm < math.inf, "policy_gradient.grad_clip_norm", "must be > 0")
        need(g.update_every >= 1, "policy_gradient.update_every", "must be >= 1")
        need(0 < g.max_importance_weight < math.inf, "policy_gradient.max_importance_weight", "must be > 0")
        need(0 < self.ppo.clip_ratio < 1, "ppo.clip_ratio", "must be in (0, 1)")
        need(self.ppo.epochs >= 1, "ppo.epochs", "must be >= 1")
        e = self.evolution
        need(e.population_size >= 2, "evolution.population_size", "must be >= 2")
        need(
            1 <= e.tournament_size <= e.population_size,
            "evolution.tournament_size",
            f"must be in 1..{e.population_size} (the population size)",
        )


def _policy_kwargs(config: ControllerConfig) -> dict:
    p, g = config.policy, config.policy_gradient
    return dict(
        lstm_units=p.lstm_units,
        lstm_layers=p.lstm_layers,
        embedding_size=p.embedding_size,
        init_range=p.init_range,
        learning_rate=g.learning_rate,
        baseline_decay=g.baseline_decay,
        entropy_weight=g.entropy_weight,
        grad_clip_norm=g.grad_clip_norm,
        update_every=g.update_every,
    )


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
        return ReinforceController(
            encoding,
            seed,
            **_policy_kwargs(config),
            max_importance_weight=config.policy_gradient.max_importance_weight,
            **failure,
        )
    if name == "ppo":
        return PPOController(
            encoding,
            seed,
            **_policy_kwargs(config),
            clip_ratio=config.ppo.clip_ratio,
            epochs=config.ppo.epochs,
            **failure,
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

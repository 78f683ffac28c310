"""The controller section of an experiment, and the factory that reads it.

Only ``build_controller`` reads a ``ControllerConfig``. The groups the policy
controllers use travel whole: ``LSTMPolicy`` takes ``PolicyNetworkConfig``,
``ReinforceController`` that and ``PolicyGradientConfig``, ``PPOController``
also ``PPOConfig``. Each group checks itself (``validate``, run by the
constructors and by ``ControllerConfig.validate``), and the controllers
record every field of their groups as snapshot hyperparameters, so a new
hyperparameter is written in this file and in the one module that uses it.
Every field is a plain type or a nested frozen dataclass, so strict ``a.b=v``
overrides apply to it.

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

from controller.base import FAILURE_POLICIES, FAILURE_SKIP
from controller.registry import known_controller_names
from search_space.errors import UserError

# The algorithms are imported by ``build_controller`` only: configs are read
# by every command, and the policy networks need TensorFlow.


class ControllerConfigError(UserError, ValueError):
    """A controller config field is out of range; the message names it and the allowed values."""


def _check(group: object, prefix: str, ok: bool, field: str, allowed: str) -> None:
    """Raises ``ControllerConfigError("prefix.field is value; allowed")`` unless ``ok``."""
    if not ok:
        raise ControllerConfigError(f"{prefix}.{field} is {getattr(group, field)!r}; {allowed}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class PolicyNetworkConfig:
    """The LSTM policy of ``reinforce`` and ``ppo`` (``LSTMPolicy`` takes it whole).

    A new field needs its check in ``validate`` and its use in
    ``controller/rnn_policy.py``; controller snapshots record it by itself
    (the fields are the snapshot's hyperparameters).

    Attributes:
      lstm_units: units per LSTM layer (NAS-RL: 35).
      lstm_layers: stacked LSTM layers (NAS-RL: 2).
      embedding_size: size of the previous decision's embedding.
      init_range: weights start uniform in [-init_range, init_range] (NAS-RL: 0.08).
      temperature: the head's logits are divided by it (ENAS: 5.0; NAS-RL: 1.0, no change).
      tanh_constant: when > 0, logits become ``tanh_constant * tanh(logits / temperature)``
        (ENAS: 2.5): no choice ever gets a probability above ``e^(2c)`` times
        another's, which keeps the policy from collapsing early. 0 (NAS-RL): off.
    """

    lstm_units: int = 35
    lstm_layers: int = 2
    embedding_size: int = 35
    init_range: float = 0.08
    temperature: float = 1.0
    tanh_constant: float = 0.0

    def validate(self, prefix: str = "controller.policy") -> None:
        """Raises ControllerConfigError naming the first field out of range (``prefix.field``)."""
        for name in ("lstm_units", "lstm_layers", "embedding_size"):
            _check(self, prefix, _is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "must be >= 1")
        _check(self, prefix, 0 < self.init_range < math.inf, "init_range", "must be > 0")
        _check(self, prefix, 0 < self.temperature < math.inf, "temperature", "must be > 0")
        _check(self, prefix, 0 <= self.tanh_constant < math.inf, "tanh_constant", "must be >= 0 (0: off)")


ADVANTAGE_NORMALIZATIONS = ("none", "batch", "running")


@dataclasses.dataclass(frozen=True)
class PolicyGradientConfig:
    """Training of the LSTM policy, shared by ``reinforce`` and ``ppo`` (the controllers take it whole).

    The defaults are NAS-RL's controller (the fields NAS-RL gives no value
    for are ours); every later addition defaults to "off", so a search frozen
    before it existed resumes unchanged. A new field needs its check in
    ``validate`` and its use in ``controller/reinforce.py``; snapshots record it
    by itself.

    Attributes:
      learning_rate: Adam's learning rate (NAS-RL: 6e-4).
      baseline_decay: decay of the exponential moving average of rewards.
      entropy_weight: weight of the entropy bonus.
      grad_clip_norm: gradients are clipped to this global norm.
      update_every: results per update (NAS-RL's m = 8).
      max_importance_weight: ``reinforce`` only: cap of the importance weight
        of a stale proposal.
      advantage_normalization: ``none`` (NAS-RL: reward minus the moving
        average), ``batch`` (those advantages standardised over the update's
        batch: zero mean, unit deviation; needs ``update_every >= 2``) or
        ``running`` (divided by a moving average of the reward's deviation,
        with the same decay as the baseline). Normalised advantages make the
        step independent of the reward's scale (AP of 0.1-0.3 or a 0-1 score).
      steps_per_update: gradient steps on each batch (importance-weighted
        against the policy that sampled it; PPO's epochs come on top).
      priority_queue_size: the best this many distinct architectures so far
        are kept (Abolafia et al. 2018, priority-queue training); 0: off.
      priority_queue_weight: weight of the queue's mean log-likelihood in
        every update's objective (pulls the policy towards the best found).
    """

    learning_rate: float = 6e-4
    baseline_decay: float = 0.95
    entropy_weight: float = 1e-4
    grad_clip_norm: float = 5.0
    update_every: int = 8
    max_importance_weight: float = 1.0
    advantage_normalization: str = "none"
    steps_per_update: int = 1
    priority_queue_size: int = 0
    priority_queue_weight: float = 0.0

    def validate(self, prefix: str = "controller.policy_gradient") -> None:
        """Raises ControllerConfigError naming the first field out of range (``prefix.field``)."""
        _check(self, prefix, 0 < self.learning_rate < math.inf, "learning_rate", "must be > 0")
        _check(self, prefix, 0 <= self.baseline_decay < 1, "baseline_decay", "must be in [0, 1)")
        _check(self, prefix, 0 <= self.entropy_weight < math.inf, "entropy_weight", "must be >= 0")
        _check(self, prefix, 0 < self.grad_clip_norm < math.inf, "grad_clip_norm", "must be > 0")
        _check(self, prefix, _is_int(self.update_every) and self.update_every >= 1, "update_every", "must be >= 1")
        _check(self, prefix, 0 < self.max_importance_weight < math.inf, "max_importance_weight", "must be > 0")
        _check(
            self,
            prefix,
            self.advantage_normalization in ADVANTAGE_NORMALIZATIONS,
            "advantage_normalization",
            f"allowed {', '.join(ADVANTAGE_NORMALIZATIONS)}",
        )
        _check(
            self,
            prefix,
            self.advantage_normalization != "batch" or self.update_every >= 2,
            "advantage_normalization",
            "batch needs update_every >= 2 (one result has no deviation)",
        )
        _check(
            self,
            prefix,
            _is_int(self.steps_per_update) and self.steps_per_update >= 1,
            "steps_per_update",
            "must be >= 1",
        )
        _check(
            self,
            prefix,
            _is_int(self.priority_queue_size) and self.priority_queue_size >= 0,
            "priority_queue_size",
            "must be >= 0 (0: off)",
        )
        _check(self, prefix, 0 <= self.priority_queue_weight < math.inf, "priority_queue_weight", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO's own hyperparameters (``PPOController`` takes it whole).

    Attributes:
      clip_ratio: epsilon of the clipped surrogate (Schulman et al.: 0.2).
      epochs: gradient steps over each batch of ``update_every`` results.
    """

    clip_ratio: float = 0.2
    epochs: int = 4

    def validate(self, prefix: str = "controller.ppo") -> None:
        """Raises ControllerConfigError naming the first field out of range (``prefix.field``)."""
        _check(self, prefix, 0 < self.clip_ratio < 1, "clip_ratio", "must be in (0, 1)")
        _check(self, prefix, _is_int(self.epochs) and self.epochs >= 1, "epochs", "must be >= 1")


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
        self.policy.validate()
        self.policy_gradient.validate()
        self.ppo.validate()
        e = self.evolution
        need(e.population_size >= 2, "evolution.population_size", "must be >= 2")
        need(
            1 <= e.tournament_size <= e.population_size,
            "evolution.tournament_size",
            f"must be in 1..{e.population_size} (the population size)",
        )


# REINFORCE tuned for budgets of hundreds to a few thousand trials (a detection search's budget), chosen
# with bench/bench_controllers.py on its tuning seeds (see the README's "Search algorithms"). NAS-RL's own
# controller stays ControllerConfig()'s defaults.
SAMPLE_EFFICIENT_REINFORCE = ControllerConfig(
    policy_gradient=PolicyGradientConfig(
        learning_rate=0.01,
        update_every=4,
        advantage_normalization="batch",
        priority_queue_size=10,
        priority_queue_weight=0.1,
    )
)

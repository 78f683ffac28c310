"""Proximal Policy Optimization on the NAS-RL policy network (NAS-FPN's choice).

The same LSTM policy, baseline and bookkeeping as ``ReinforceController``;
the update differs. Once ``update_every`` results have arrived, ``epochs``
Adam steps over the whole batch maximise the clipped surrogate (Schulman et
al. 2017)::

    ratio = pi(a) / mu(a)
    objective = mean(min(ratio * A, clip(ratio, 1 - clip_ratio, 1 + clip_ratio) * A))
                + entropy_weight * mean(entropy)

with ``mu`` the log-probability stored when the proposal was sampled, ``A``
the advantage against the moving-average baseline, and one ratio per
sequence (the reward belongs to the whole architecture). Stale proposals need
nothing extra: ``mu`` is the policy that really sampled them, and the clip
keeps the step near it. One update (all its epochs) is one policy version.
In ``stats()``, ``importance_weight`` is the mean ratio of the last epoch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from controller.base import FAILURE_SKIP
from controller.config import PolicyGradientConfig, PolicyNetworkConfig, PPOConfig
from controller.reinforce import ReinforceController
from search_space import DecisionEncoding


class PPOController(ReinforceController):
    """The LSTM policy trained with PPO's clipped surrogate.

    Args:
      encoding: the decision encoding.
      seed: seeds the initial weights and every proposal's sampling.
      policy, training: as for ``ReinforceController`` (``max_importance_weight``
        is unused: the clip does its work).
      ppo: the clip and the epochs (``PPOConfig``); each update takes
        ``epochs * steps_per_update`` gradient steps over the whole batch.
      failure_policy, failure_reward: see ``BaseController``.

    Raises:
      ControllerConfigError: a field out of range, naming it.
    """

    name = "ppo"

    def __init__(
        self,
        encoding: DecisionEncoding,
        seed: int,
        *,
        policy: PolicyNetworkConfig | None = None,
        training: PolicyGradientConfig | None = None,
        ppo: PPOConfig | None = None,
        failure_policy: str = FAILURE_SKIP,
        failure_reward: float = 0.0,
    ):
        self.ppo = ppo or PPOConfig()
        self.ppo.validate()
        super().__init__(
            encoding,
            seed,
            policy=policy,
            training=training,
            failure_policy=failure_policy,
            failure_reward=failure_reward,
        )

    def _extra_hparams(self) -> dict[str, Any]:
        return dataclasses.asdict(self.ppo)

    def _surrogate(self, log_prob, old_log_prob, advantages):
        ratio = tf.exp(log_prob - old_log_prob)
        clipped = tf.clip_by_value(ratio, 1.0 - self.ppo.clip_ratio, 1.0 + self.ppo.clip_ratio)
        return tf.minimum(ratio * advantages, clipped * advantages), ratio

    def _gradient_steps(self) -> int:
        return self.ppo.epochs * self.training.steps_per_update

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

from typing import Any

import tensorflow as tf

from controller.base import FAILURE_SKIP, check_hparam
from controller.reinforce import ReinforceController
from search_space import DecisionEncoding


class PPOController(ReinforceController):
    """The LSTM policy trained with PPO's clipped surrogate.

    Args:
      encoding: the decision encoding.
      seed: seeds the initial weights and every proposal's sampling.
      lstm_units, lstm_layers, embedding_size, init_range: the policy network.
      learning_rate, baseline_decay, entropy_weight, grad_clip_norm,
        update_every: as for ``ReinforceController``.
      clip_ratio: PPO's epsilon.
      epochs: gradient steps per update, each over the whole batch.
      failure_policy, failure_reward: see ``BaseController``.

    Raises:
      ValueError: a hyperparameter out of range, naming it.
    """

    name = "ppo"

    def __init__(
        self,
        encoding: DecisionEncoding,
        seed: int,
        *,
        lstm_units: int = 35,
        lstm_layers: int = 2,
        embedding_size: int = 35,
        init_range: float = 0.08,
        learning_rate: float = 6e-4,
        baseline_decay: float = 0.95,
        entropy_weight: float = 1e-4,
        grad_clip_norm: float = 5.0,
        update_every: int = 8,
        clip_ratio: float = 0.2,
        epochs: int = 4,
        failure_policy: str = FAILURE_SKIP,
        failure_reward: float = 0.0,
    ):
        check_hparam(0 < clip_ratio < 1, "clip_ratio", clip_ratio, "in (0, 1)")
        check_hparam(isinstance(epochs, int) and epochs >= 1, "epochs", epochs, "an integer >= 1")
        self.clip_ratio = float(clip_ratio)
        self.epochs = epochs
        super().__init__(
            encoding,
            seed,
            lstm_units=lstm_units,
            lstm_layers=lstm_layers,
            embedding_size=embedding_size,
            init_range=init_range,
            learning_rate=learning_rate,
            baseline_decay=baseline_decay,
            entropy_weight=entropy_weight,
            grad_clip_norm=grad_clip_norm,
            update_every=update_every,
            failure_policy=failure_policy,
            failure_reward=failure_reward,
        )

    def _extra_hparams(self) -> dict[str, Any]:
        return {"clip_ratio": self.clip_ratio, "epochs": self.epochs}

    def _surrogate(self, log_prob, old_log_prob, advantages):
        ratio = tf.exp(log_prob - old_log_prob)
        clipped = tf.clip_by_value(ratio, 1.0 - self.clip_ratio, 1.0 + self.clip_ratio)
        return tf.minimum(ratio * advantages, clipped * advantages), ratio

    def _update(self, buffer: list[dict[str, Any]]) -> None:
        tensors = self._batch_tensors(buffer)
        for _ in range(self.epochs):
            out = self._train_step(*tensors)
        self._last.update({k: float(v) for k, v in out.items()})
        self._last["staleness"] = float(
            sum(self._policy_version - item["policy_version"] for item in buffer) / len(buffer)
        )

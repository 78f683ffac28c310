"""The proxy's learning-rate schedule: linear warmup, then step decay.

The public proxy recipe (docs/proxy_recipe.md#optimizer-and-schedule; the
reference RetinaNet defaults): from ``warmup_learning_rate`` (0.0067) the rate
rises linearly to ``learning_rate`` (0.08) over ``warmup_steps`` (500), then
is multiplied by ``decay_rate`` (0.1) after each boundary step (the reference
decays at steps 15,000 and 20,000 of 22,500).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf


class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to a peak learning rate, then piecewise-constant decay.

    The rate of optimizer step ``s`` (0-based) is
    ``warmup_lr + (peak - warmup_lr) * s / warmup_steps`` while
    ``s < warmup_steps``, and ``peak * decay_rate ** n`` after that, ``n``
    being the number of boundaries ``<= s``.

    Args:
      learning_rate: the peak rate.
      warmup_steps: steps of the linear warmup (0 = none).
      warmup_learning_rate: the rate at step 0.
      boundaries: ascending steps after which the rate decays.
      decay_rate: the factor of each decay.
    """

    def __init__(
        self,
        learning_rate: float,
        warmup_steps: int,
        warmup_learning_rate: float,
        boundaries: Sequence[int],
        decay_rate: float,
    ):
        super().__init__()
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.warmup_learning_rate = float(warmup_learning_rate)
        self.boundaries = tuple(int(b) for b in boundaries)
        self.decay_rate = float(decay_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decays = tf.zeros([], tf.float32)
        for boundary in self.boundaries:
            decays += tf.cast(step >= boundary, tf.float32)
        decayed = self.learning_rate * tf.pow(self.decay_rate, decays)
        if self.warmup_steps <= 0:
            return decayed
        fraction = step / float(self.warmup_steps)
        warm = self.warmup_learning_rate + (self.learning_rate - self.warmup_learning_rate) * fraction
        return tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "warmup_learning_rate": self.warmup_learning_rate,
            "boundaries": list(self.boundaries),
            "decay_rate": self.decay_rate,
        }

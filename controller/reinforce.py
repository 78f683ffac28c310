"""REINFORCE with an exponential-moving-average baseline (NAS-RL, as SpineNet used it).

Every usable result gets the advantage ``reward - baseline`` (the baseline
before this reward), then the baseline moves:
``baseline = decay * baseline + (1 - decay) * reward``; the first reward sets
it. Once ``update_every`` results (NAS-RL's m) have arrived, one Adam step
minimises ``-mean(w * advantage * log_prob) - entropy_weight * mean(entropy)``
with the gradient clipped to a global norm.

Stale proposals. With many workers a result often belongs to a proposal
sampled by an older policy. Its stored log-probability (from the sampling
pass) is the behaviour policy ``mu``; the update weighs it by the truncated
importance weight ``w = min(pi(a) / mu(a), max_importance_weight)`` with
``pi`` the current policy, held constant in the gradient. That is the
off-policy policy gradient with the truncation of ACER and V-trace: a fresh
proposal has ``w = 1`` (up to rounding), a stale one that the policy has
since moved away from counts less, and no weight exceeds the cap, so one
unlikely old sample cannot blow up the step. Weights are per sequence, since
the reward belongs to the whole architecture.

Beyond NAS-RL (every one off by default, each a field of
``PolicyGradientConfig``; ``bench/bench_controllers.py`` measures them):

- ``advantage_normalization``: ``batch`` standardises the batch's advantages
  (zero mean, unit deviation), ``running`` divides each by a moving average
  of the reward's deviation from the baseline, so the step no longer scales
  with the reward (a proxy AP of 0.1-0.3 gives NAS-RL's update tiny
  advantages).
- ``steps_per_update``: several gradient steps on each batch; after the
  first, the truncated importance weights above discount what the policy has
  already learned from it.
- ``priority_queue_size``/``priority_queue_weight``: priority-queue training
  (Abolafia et al. 2018): the best architectures so far (distinct decision
  sequences) are kept, and every update also maximises their mean
  log-likelihood with that weight, pulling the policy towards the best found
  while the policy gradient explores around it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from controller.base import (
    FAILURE_SKIP,
    BaseController,
    ControllerStateError,
    Proposal,
)
from controller.config import PolicyGradientConfig, PolicyNetworkConfig
from controller.rnn_policy import DEVICE, LSTMPolicy, decode_array, encode_array
from search_space import DecisionEncoding

_BUFFER_KEYS = ("proposal_id", "decisions", "log_prob", "policy_version", "reward", "advantage")


def proposal_seed(seed: int, proposal_id: int) -> tuple[int, int]:
    """The stateless sampling seed of one proposal: two int32 values derived from (seed, id)."""
    words = np.random.SeedSequence([seed, proposal_id]).generate_state(2, dtype=np.uint32)
    return tuple(int(w) for w in words.view(np.int32))


class ReinforceController(BaseController):
    """The NAS-RL controller: an LSTM policy trained with REINFORCE.

    Args:
      encoding: the decision encoding.
      seed: seeds the initial weights and every proposal's sampling.
      policy: the policy network (``PolicyNetworkConfig``; None: its defaults).
      training: how it learns (``PolicyGradientConfig``; None: its defaults, NAS-RL's).
      failure_policy, failure_reward: see ``BaseController``.

    Every field of ``policy`` and ``training`` is a hyperparameter of the
    snapshot (``get_state()["hparams"]``), under its own name.

    Raises:
      ControllerConfigError: a field out of range, naming it.
    """

    name = "reinforce"

    def __init__(
        self,
        encoding: DecisionEncoding,
        seed: int,
        *,
        policy: PolicyNetworkConfig | None = None,
        training: PolicyGradientConfig | None = None,
        failure_policy: str = FAILURE_SKIP,
        failure_reward: float = 0.0,
    ):
        super().__init__(encoding, seed, failure_policy=failure_policy, failure_reward=failure_reward)
        self.network = policy or PolicyNetworkConfig()
        self.training = training or PolicyGradientConfig()
        self.training.validate()
        self.policy = LSTMPolicy(encoding, self.network, seed=seed)
        with tf.device(DEVICE):
            self.optimizer = keras.optimizers.Adam(learning_rate=self.training.learning_rate)
            self.optimizer.build(self.policy.trainable_variables)
        self._baseline: float | None = None
        self._deviation: float | None = None  # moving average of (reward - baseline)^2 ("running")
        self._buffer: list[dict[str, Any]] = []
        self._queue: list[dict[str, Any]] = []  # best first: {"reward", "proposal_id", "decisions"}
        self._last: dict[str, float] = {}
        points, choices = self.policy.num_points, self.policy.max_choices
        spec = [
            tf.TensorSpec([None, points], tf.int32),
            tf.TensorSpec([None, points], tf.int32),
            tf.TensorSpec([None, points, choices], tf.bool),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.float32),
        ]
        # XLA fuses the 68-step loop and its gradient: 4-9 ms per step instead of 20-40 ms.
        # Batches keep one shape (update_every results + the padded queue), so it compiles once.
        self._train_step = tf.function(self._gradient_step, input_signature=spec, jit_compile=True, autograph=False)

    def _hparams(self) -> dict[str, Any]:
        return {
            **super()._hparams(),
            **dataclasses.asdict(self.network),
            **dataclasses.asdict(self.training),
            **self._extra_hparams(),
        }

    def _extra_hparams(self) -> dict[str, Any]:
        return {}

    # ----- sampling and results ---------------------------------------------------

    def _sample(self, proposal_id: int) -> tuple[list[int], dict[str, Any]]:
        sampled = self.policy.sample(proposal_seed(self.seed, proposal_id))
        self._last["sample_entropy"] = sampled.entropy
        return list(sampled.decisions), {"log_prob": sampled.log_prob, "entropy": sampled.entropy}

    def _learn(self, proposal: Proposal, reward: float) -> None:
        g = self.training
        baseline = reward if self._baseline is None else self._baseline
        advantage = reward - baseline
        if g.advantage_normalization == "running":
            deviation = advantage**2 if self._deviation is None else self._deviation
            self._deviation = g.baseline_decay * deviation + (1.0 - g.baseline_decay) * advantage**2
            advantage = advantage / (math.sqrt(self._deviation) + 1e-8) if self._deviation > 0 else 0.0
        self._buffer.append(
            {
                "proposal_id": proposal.proposal_id,
                "decisions": list(proposal.decisions),
                "log_prob": float(proposal.data["log_prob"]),
                "policy_version": proposal.policy_version,
                "reward": reward,
                "advantage": advantage,
            }
        )
        self._baseline = g.baseline_decay * baseline + (1.0 - g.baseline_decay) * reward
        if g.priority_queue_size:
            self._push_queue(proposal, reward)
        if len(self._buffer) >= g.update_every:
            self._update(self._buffer)
            self._buffer = []
            self._policy_version += 1

    def sample_policy(self, count: int, seed: int) -> list[tuple[int, ...]]:
        """``count`` sequences from the current policy (``LSTMPolicy.sample_many``); changes nothing."""
        return self.policy.sample_many(count, seed)

    def _push_queue(self, proposal: Proposal, reward: float) -> None:
        """Keeps the ``priority_queue_size`` best distinct sequences, best first (earlier first on ties)."""
        decisions = list(proposal.decisions)
        for item in self._queue:
            if item["decisions"] == decisions:
                item["reward"] = max(item["reward"], reward)
                break
        else:
            self._queue.append({"reward": reward, "proposal_id": proposal.proposal_id, "decisions": decisions})
        self._queue.sort(key=lambda i: (-i["reward"], i["proposal_id"]))
        del self._queue[self.training.priority_queue_size :]

    # ----- the update ---------------------------------------------------------------

    def _surrogate(self, log_prob, old_log_prob, advantages):
        """Per-sequence objective to maximise, and the importance weights used."""
        weights = tf.minimum(tf.exp(tf.stop_gradient(log_prob) - old_log_prob), self.training.max_importance_weight)
        return weights * advantages * log_prob, weights

    def _gradient_step(self, tokens, actions, masks, advantages, old_log_prob, pg_weight, ml_weight):
        with tf.device(DEVICE):
            return self._gradient_step_on_device(tokens, actions, masks, advantages, old_log_prob, pg_weight, ml_weight)

    def _gradient_step_on_device(self, tokens, actions, masks, advantages, old_log_prob, pg_weight, ml_weight):
        """One Adam step. Rows with ``pg_weight`` (1/batch) are the results; rows with ``ml_weight`` the queue."""
        variables = self.policy.trainable_variables
        with tf.GradientTape() as tape:
            log_prob, entropy = self.policy.sequence_log_probs(tokens, actions, masks)
            objective, weights = self._surrogate(log_prob, old_log_prob, advantages)
            loss = -tf.reduce_sum(pg_weight * objective) - self.training.entropy_weight * tf.reduce_sum(
                pg_weight * entropy
            )
            loss -= tf.reduce_sum(ml_weight * log_prob)
        grads = tape.gradient(loss, variables)
        grads, grad_norm = tf.clip_by_global_norm(grads, self.training.grad_clip_norm)
        self.optimizer.apply_gradients(zip(grads, variables))
        return {
            "loss": loss,
            "grad_norm": grad_norm,
            "entropy": tf.reduce_sum(pg_weight * entropy),
            "importance_weight": tf.reduce_sum(pg_weight * weights),
            "log_ratio": tf.reduce_sum(pg_weight * (log_prob - old_log_prob)),
        }

    def _batch_tensors(self, buffer: list[dict[str, Any]]):
        """The update's rows: the buffered results, then the queue padded to its full size (weight 0)."""
        g = self.training
        advantages = np.asarray([item["advantage"] for item in buffer], dtype=np.float32)
        if g.advantage_normalization == "batch":
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        sequences = [item["decisions"] for item in buffer]
        queue = [item["decisions"] for item in self._queue]
        pad = g.priority_queue_size - len(queue)
        sequences += queue + [sequences[0]] * pad
        zeros = np.zeros(g.priority_queue_size, np.float32)
        old_log_prob = np.asarray([item["log_prob"] for item in buffer], dtype=np.float32)
        pg_weight = np.full(len(buffer), 1.0 / len(buffer), np.float32)
        ml_weight = zeros.copy()
        if queue and g.priority_queue_weight > 0:
            ml_weight[: len(queue)] = g.priority_queue_weight / len(queue)
        batch = self.policy.batch(sequences)
        return (
            batch.tokens,
            batch.actions,
            batch.masks,
            np.concatenate([advantages, zeros]),
            np.concatenate([old_log_prob, zeros]),
            np.concatenate([pg_weight, zeros]),
            np.concatenate([np.zeros(len(buffer), np.float32), ml_weight]),
        )

    def _gradient_steps(self) -> int:
        return self.training.steps_per_update

    def _update(self, buffer: list[dict[str, Any]]) -> None:
        tensors = self._batch_tensors(buffer)
        for _ in range(self._gradient_steps()):
            out = self._train_step(*tensors)
        self._last.update({k: float(v) for k, v in out.items()})
        self._last["staleness"] = float(np.mean([self._policy_version - item["policy_version"] for item in buffer]))
        if self._queue:
            self._last["queue_best"] = self._queue[0]["reward"]

    # ----- state --------------------------------------------------------------------

    def _algorithm_stats(self) -> dict[str, float]:
        out = dict(self._last)
        if self._baseline is not None:
            out["baseline"] = self._baseline
        out["buffered"] = float(len(self._buffer))
        return out

    def _algorithm_state(self) -> dict[str, Any]:
        return {
            "weights": self.policy.get_weights_state(),
            "optimizer": [encode_array(np.asarray(v.numpy(), np.float32)) for v in self._float_slots()],
            "optimizer_iterations": int(self.optimizer.iterations.numpy()),
            "baseline": self._baseline,
            "buffer": [dict(item) for item in self._buffer],
            "last_stats": dict(self._last),
            "deviation": self._deviation,
            "priority_queue": [dict(item) for item in self._queue],
        }

    def _float_slots(self) -> list:
        """The optimizer's float variables (moments), in their fixed order."""
        return [v for v in self.optimizer.variables if v is not self.optimizer.iterations and "float" in str(v.dtype)]

    def _restore_algorithm_state(self, state: dict[str, Any]) -> None:
        baseline, deviation = state.get("baseline"), state.get("deviation")  # no deviation before it existed
        for key, value in (("baseline", baseline), ("deviation", deviation)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ControllerStateError(f"{key} {value!r} must be a finite number or null")
        queue = state.get("priority_queue", [])
        if not isinstance(queue, list) or any(
            not isinstance(i, dict) or set(i) != {"reward", "proposal_id", "decisions"} for i in queue
        ):
            raise ControllerStateError(
                "priority_queue must be a list of records with keys reward, proposal_id, decisions"
            )
        if len(queue) > self.training.priority_queue_size:
            raise ControllerStateError(
                f"priority_queue holds {len(queue)} records; priority_queue_size is {self.training.priority_queue_size}"
            )
        if queue:
            self.policy.batch([item["decisions"] for item in queue])  # raises on invalid decisions
        buffer = state.get("buffer")
        if not isinstance(buffer, list) or any(not isinstance(i, dict) or set(i) != set(_BUFFER_KEYS) for i in buffer):
            raise ControllerStateError(f"buffer must be a list of records with keys {', '.join(_BUFFER_KEYS)}")
        self.policy.batch([item["decisions"] for item in buffer])  # raises on invalid decisions
        slots = self._float_slots()
        data = state.get("optimizer")
        if not isinstance(data, list) or len(data) != len(slots):
            raise ControllerStateError(f"optimizer: expected {len(slots)} slot arrays")
        arrays = [decode_array(d, v.shape, f"optimizer slot {i}") for i, (d, v) in enumerate(zip(data, slots))]
        iterations = state.get("optimizer_iterations")
        if not isinstance(iterations, int) or iterations < 0:
            raise ControllerStateError(f"optimizer_iterations {iterations!r} must be a non-negative integer")
        self.policy.set_weights_state(state.get("weights"))
        for var, array in zip(slots, arrays):
            var.assign(array)
        self.optimizer.iterations.assign(iterations)
        self._baseline = None if baseline is None else float(baseline)
        self._deviation = None if deviation is None else float(deviation)
        self._queue = [
            {"reward": float(i["reward"]), "proposal_id": int(i["proposal_id"]), "decisions": list(i["decisions"])}
            for i in queue
        ]
        self._buffer = [dict(item) for item in buffer]
        self._last = {str(k): float(v) for k, v in dict(state.get("last_stats", {})).items()}

"""The NAS-RL controller network: a stacked LSTM over the decision sequence.

At decision point ``t`` the network embeds the previous decision (a learned
start token at ``t = 0``), steps the stacked LSTM cells, and maps the top
output through point ``t``'s own softmax head to logits over that point's
choices. Choices that are invalid given the earlier decisions (the
``DecisionCursor`` masks) get a logit of ``MASKED_LOGIT``, so they have
probability 0. TensorFlow Probability's ``Categorical`` samples, scores and
measures the entropy of every step.

Every (point, choice) pair has its own embedding row: the same index means
different things at different points (a level, a parent), so sharing rows
would only confuse the network.

Sampling runs as one ``tf.function`` call per architecture: a graph loop over
the points calls back into Python (``tf.numpy_function``) for the next mask,
so the search space's own cursor decides validity. It is deterministic: step
``t`` of a proposal draws with the stateless seed ``fold_in(proposal_seed, t)``.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from controller.config import PolicyNetworkConfig
from search_space import DecisionCursor, DecisionEncoding

tfd = tfp.distributions

# The policy is tiny and steps through Python between decisions: it runs on the
# CPU even where a GPU is visible (faster, and bit-reproducible).
DEVICE = "/CPU:0"
# Logit of a masked-out choice: exp(MASKED_LOGIT - max) is exactly 0 in
# float32, and unlike -inf it keeps p * log p (the entropy) finite.
MASKED_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class SampledSequence:
    """One sampled decision sequence.

    Attributes:
      decisions: the choices, one per decision point.
      log_prob: the sum of the per-step log-probabilities.
      entropy: the sum of the per-step entropies along the sequence.
    """

    decisions: tuple[int, ...]
    log_prob: float
    entropy: float


@dataclasses.dataclass(frozen=True)
class SequenceBatch:
    """Decision sequences laid out for the training pass.

    Attributes:
      tokens: ``[B, T]`` embedding row fed at each step.
      actions: ``[B, T]`` the choices made.
      masks: ``[B, T, max_choices]`` valid choices at each step.
    """

    tokens: np.ndarray
    actions: np.ndarray
    masks: np.ndarray


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A float32 array as JSON-ready data (exact: the raw little-endian bytes in base64)."""
    array = np.asarray(array, dtype="<f4")
    return {"shape": list(array.shape), "float32_base64": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(data: dict[str, Any], shape: Sequence[int], what: str) -> np.ndarray:
    """Inverse of ``encode_array``.

    Raises:
      ValueError: naming ``what``, if the data is malformed or of another shape.
    """
    if not isinstance(data, dict) or "float32_base64" not in data:
        raise ValueError(f"{what}: expected an encoded array, got {type(data).__name__}")
    if list(data.get("shape", [])) != list(shape):
        raise ValueError(f"{what}: shape {data.get('shape')} does not match {list(shape)}")
    raw = base64.b64decode(data["float32_base64"], validate=True)
    array = np.frombuffer(raw, dtype="<f4")
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{what}: {array.size} values for shape {list(shape)}")
    return array.reshape(shape).astype(np.float32)


class LSTMPolicy(keras.Model):
    """A NAS-RL controller over a decision encoding.

    Args:
      encoding: the decision sequence to sample.
      config: the network (``PolicyNetworkConfig``, its defaults if None: sizes, initial range,
        logit temperature and tanh constant); validated here.
      seed: seeds the initial weights.

    Raises:
      ControllerConfigError: a field of ``config`` out of range, naming it.
      ValueError: an encoding without decision points.
    """

    def __init__(self, encoding: DecisionEncoding, config: PolicyNetworkConfig | None = None, *, seed: int = 0):
        config = config or PolicyNetworkConfig()
        config.validate()
        if len(encoding) == 0:
            raise ValueError("LSTMPolicy: the encoding has no decision points; nothing to learn")
        super().__init__(name="lstm_policy")
        self.network_config = config
        with tf.device(DEVICE):
            self._build_network(encoding, config, seed)
        self._cursor: DecisionCursor | None = None
        # Explicit graph loops, no autograph: tracing never re-reads this file's source.
        self._sample_graph = tf.function(
            self._sample_loop, input_signature=[tf.TensorSpec((2,), tf.int32)], autograph=False
        )

    def _build_network(self, encoding: DecisionEncoding, config: PolicyNetworkConfig, seed: int) -> None:
        self.encoding = encoding
        num_choices = np.asarray(encoding.num_choices, dtype=np.int32)
        self.num_points = len(num_choices)
        self.max_choices = int(num_choices.max())
        self.lstm_units = lstm_units = config.lstm_units
        # Row of (point t, choice c) is offsets[t] + c; row 0 is the start token.
        self._offsets = np.concatenate([[1], 1 + np.cumsum(num_choices)[:-1]]).astype(np.int32)
        self.embedding = keras.layers.Embedding(
            1 + int(num_choices.sum()), config.embedding_size, name="decision_embedding"
        )
        self.cells = [
            keras.layers.LSTMCell(lstm_units, unit_forget_bias=False, name=f"lstm_{i}")
            for i in range(config.lstm_layers)
        ]
        self.embedding.build((None,))
        width = config.embedding_size
        for cell in self.cells:
            cell.build((None, width))
            width = lstm_units
        self.head_kernel = self.add_weight(
            shape=(self.num_points, lstm_units, self.max_choices), initializer="zeros", name="head_kernel"
        )
        self.head_bias = self.add_weight(
            shape=(self.num_points, self.max_choices), initializer="zeros", name="head_bias"
        )
        self._initialize(seed, config.init_range)
        self._offsets_t = tf.constant(self._offsets)

    def _initialize(self, seed: int, init_range: float) -> None:
        rng = np.random.default_rng(seed)
        for var in self.trainable_variables:
            var.assign(rng.uniform(-init_range, init_range, size=var.shape).astype(np.float32))

    # ----- the network ------------------------------------------------------------

    def _zero_states(self, batch) -> list[tf.Tensor]:
        return [tf.zeros(tf.stack([batch, self.lstm_units])) for _ in range(2 * len(self.cells))]

    def _step(self, tokens: tf.Tensor, t: tf.Tensor, states: list[tf.Tensor]):
        """One decision point for a batch: embeds ``tokens``, steps the LSTM, returns logits and states."""
        x = self.embedding(tokens)
        new_states = []
        for i, cell in enumerate(self.cells):
            x, (h, c) = cell(x, [states[2 * i], states[2 * i + 1]])
            new_states += [h, c]
        logits = tf.matmul(x, tf.gather(self.head_kernel, t)) + tf.gather(self.head_bias, t)
        if self.network_config.temperature != 1.0:
            logits = logits / self.network_config.temperature
        if self.network_config.tanh_constant > 0:
            logits = self.network_config.tanh_constant * tf.tanh(logits)
        return logits, new_states

    def sequence_log_probs(self, tokens: tf.Tensor, actions: tf.Tensor, masks: tf.Tensor):
        """Log-probability and entropy of whole sequences under the current weights (differentiable).

        Args:
          tokens: ``[B, T]`` int32 embedding rows (``SequenceBatch.tokens``).
          actions: ``[B, T]`` int32 choices.
          masks: ``[B, T, max_choices]`` bool valid choices.

        Returns:
          ``(log_prob [B], entropy [B])``, each summed over the steps.
        """
        batch = tf.shape(tokens)[0]

        def body(t, log_prob, entropy, states):
            logits, states = self._step(tf.gather(tokens, t, axis=1), t, list(states))
            dist = tfd.Categorical(logits=tf.where(tf.gather(masks, t, axis=1), logits, MASKED_LOGIT))
            log_prob += dist.log_prob(tf.gather(actions, t, axis=1))
            return t + 1, log_prob, entropy + dist.entropy(), tuple(states)

        start = (tf.constant(0), tf.zeros([batch]), tf.zeros([batch]), tuple(self._zero_states(batch)))
        _, log_prob, entropy, _ = tf.while_loop(
            lambda t, *_: t < self.num_points, body, start, maximum_iterations=self.num_points
        )
        return log_prob, entropy

    # ----- sampling ---------------------------------------------------------------

    def _next_mask(self, previous_choice: np.ndarray) -> np.ndarray:
        """Applies the previous choice to the cursor and returns the next padded mask."""
        if previous_choice >= 0:
            self._cursor.choose(int(previous_choice))
        padded = np.zeros(self.max_choices, dtype=bool)
        mask = self._cursor.mask()
        padded[: len(mask)] = mask
        return padded

    def _sample_loop(self, seed: tf.Tensor):
        with tf.device(DEVICE):
            return self._sample_steps(seed)

    def _sample_steps(self, seed: tf.Tensor):
        def body(t, choice, choices, log_prob, entropy, states):
            mask = tf.numpy_function(self._next_mask, [choice], tf.bool, stateful=True)
            mask = tf.ensure_shape(mask, [self.max_choices])
            token = tf.reshape(tf.where(t > 0, tf.gather(self._offsets_t, tf.maximum(t - 1, 0)) + choice, 0), [1])
            logits, states = self._step(token, t, list(states))
            dist = tfd.Categorical(logits=tf.where(mask, logits[0], MASKED_LOGIT))
            choice = tf.cast(dist.sample(seed=tf.random.experimental.stateless_fold_in(seed, t)), tf.int32)
            log_prob += dist.log_prob(choice)
            entropy += dist.entropy()
            return t + 1, choice, choices.write(t, choice), log_prob, entropy, tuple(states)

        start = (
            tf.constant(0),
            tf.constant(-1),
            tf.TensorArray(tf.int32, size=self.num_points),
            tf.constant(0.0),
            tf.constant(0.0),
            tuple(self._zero_states(1)),
        )
        _, _, choices, log_prob, entropy, _ = tf.while_loop(
            lambda t, *_: t < self.num_points, body, start, maximum_iterations=self.num_points
        )
        return choices.stack(), log_prob, entropy

    def sample(self, seed: tuple[int, int]) -> SampledSequence:
        """Samples one valid decision sequence.

        Args:
          seed: two int32 values; the same seed and weights give the same sequence.

        Returns:
          The decisions with their log-probability and entropy.
        """
        self._cursor = self.encoding.cursor()
        try:
            choices, log_prob, entropy = self._sample_graph(tf.constant(seed, tf.int32))
            choices = [int(c) for c in choices.numpy()]
            self._cursor.choose(choices[-1])
            decisions = tuple(self._cursor.decisions)
        finally:
            self._cursor = None
        return SampledSequence(decisions, float(log_prob), float(entropy))

    def sample_many(self, count: int, seed: int) -> list[tuple[int, ...]]:
        """``count`` valid decision sequences drawn from the current policy together.

        For statistics of the policy (what it would propose now), not for
        proposals: the draws come from a NumPy generator seeded with ``seed``
        (the same seed and weights give the same sequences), one batched pass
        through the network instead of ``count`` graph runs, and nothing of
        the policy or of ``sample``'s stream changes.
        """
        rng = np.random.default_rng(seed)
        cursors = [self.encoding.cursor() for _ in range(count)]
        masks = np.zeros((count, self.max_choices), dtype=bool)
        tokens = np.zeros(count, dtype=np.int32)
        with tf.device(DEVICE):
            states = self._zero_states(count)
            for t in range(self.num_points):
                logits, states = self._step(tf.constant(tokens), tf.constant(t), states)
                masks[:] = False
                for i, cursor in enumerate(cursors):
                    mask = cursor.mask()
                    masks[i, : len(mask)] = mask
                logits = np.where(masks, logits.numpy().astype(np.float64), -np.inf)
                probs = np.exp(logits - logits.max(axis=1, keepdims=True))
                cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
                draws = rng.random((count, 1))
                # The first valid choice whose cumulative probability exceeds the draw.
                choices = np.argmax((cumulative > draws) & masks, axis=1)
                for cursor, choice in zip(cursors, choices):
                    cursor.choose(int(choice))
                tokens = (self._offsets[t] + choices).astype(np.int32)
        return [tuple(cursor.decisions) for cursor in cursors]

    # ----- batches and weights ----------------------------------------------------

    def batch(self, sequences: Sequence[Sequence[int]]) -> SequenceBatch:
        """Lays out valid decision sequences for ``sequence_log_probs``.

        Raises:
          ArchitectureError: a sequence that is not valid in the encoding.
        """
        n, t_max = len(sequences), self.num_points
        actions = np.asarray(sequences, dtype=np.int32).reshape(n, t_max)
        tokens = np.zeros((n, t_max), dtype=np.int32)
        tokens[:, 1:] = self._offsets[:-1] + actions[:, :-1]
        masks = np.zeros((n, t_max, self.max_choices), dtype=bool)
        for i, seq in enumerate(sequences):
            for t, mask in enumerate(self.encoding.masks(list(seq))):
                masks[i, t, : len(mask)] = mask
        return SequenceBatch(tokens, actions, masks)

    def get_weights_state(self) -> list[dict[str, Any]]:
        """Every weight as JSON-ready data, in a fixed order."""
        return [encode_array(v.numpy()) for v in self.trainable_variables]

    def set_weights_state(self, data: list[dict[str, Any]]) -> None:
        """Inverse of ``get_weights_state``; checks every shape before assigning any.

        Raises:
          ValueError: a count or shape that does not match this network.
        """
        variables = self.trainable_variables
        if not isinstance(data, list) or len(data) != len(variables):
            raise ValueError(
                f"policy weights: expected {len(variables)} arrays, got {len(data) if isinstance(data, list) else data!r}"
            )
        arrays = [
            decode_array(d, v.shape, f"policy weight {i} ({v.path})") for i, (d, v) in enumerate(zip(data, variables))
        ]
        for var, array in zip(variables, arrays):
            var.assign(array)

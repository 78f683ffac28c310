"""The LSTM policy network: valid, deterministic sampling; log-probabilities; weights as data."""

import numpy as np
import pytest

from controller import ControllerConfigError, PolicyNetworkConfig
from controller.rnn_policy import LSTMPolicy, decode_array, encode_array
from search_space import ArchitectureError


@pytest.fixture(scope="module")
def peaky(encoding):
    """Large random weights: sharp distributions that would pick masked choices if masking leaked."""
    return LSTMPolicy(encoding, PolicyNetworkConfig(lstm_units=16, embedding_size=8, init_range=3.0), seed=1)


def test_samples_are_valid_and_scored(encoding, peaky):
    seen = set()
    for i in range(300):
        s = peaky.sample((5, i))
        encoding.decode(s.decisions)  # raises on any invalid choice
        assert len(s.decisions) == len(encoding) == 68
        assert np.isfinite(s.log_prob) and s.log_prob <= 0
        assert s.entropy >= 0
        seen.add(s.decisions)
    assert len(seen) > 200  # sharp, but still a distribution


def test_sampling_is_deterministic_in_the_seed(peaky):
    assert peaky.sample((1, 2)) == peaky.sample((1, 2))
    assert peaky.sample((1, 2)).decisions != peaky.sample((1, 3)).decisions


def test_training_pass_scores_samples_as_the_sampler_did(encoding):
    policy = LSTMPolicy(encoding, seed=3)
    samples = [policy.sample((0, i)) for i in range(4)]
    batch = policy.batch([s.decisions for s in samples])
    log_prob, entropy = policy.sequence_log_probs(batch.tokens, batch.actions, batch.masks)
    np.testing.assert_allclose(log_prob.numpy(), [s.log_prob for s in samples], rtol=1e-5)
    np.testing.assert_allclose(entropy.numpy(), [s.entropy for s in samples], rtol=1e-5)


def test_batch_layout(encoding):
    policy = LSTMPolicy(encoding, seed=0)
    decisions = policy.sample((0, 0)).decisions
    batch = policy.batch([decisions])
    assert batch.tokens[0, 0] == 0  # the start token
    assert batch.tokens[0, 1] == 1 + decisions[0]  # point 0's rows start at 1
    assert batch.tokens[0, 2] == 1 + encoding.num_choices[0] + decisions[1]
    assert batch.masks.shape == (1, 68, max(encoding.num_choices))
    for t, n in enumerate(encoding.num_choices):
        assert batch.masks[0, t, decisions[t]]
        assert not batch.masks[0, t, n:].any()  # padding is never valid
    with pytest.raises(ArchitectureError, match="decision 0"):
        policy.batch([[99] * 68])


def test_initial_weights_are_uniform_in_the_nas_rl_range(encoding):
    policy = LSTMPolicy(encoding, seed=0)
    values = np.concatenate([v.numpy().ravel() for v in policy.trainable_variables])
    assert values.min() >= -0.08 and values.max() <= 0.08
    assert values.min() < -0.079 and values.max() > 0.079
    assert abs(values.mean()) < 0.002


def test_weights_round_trip_exactly(encoding):
    a = LSTMPolicy(encoding, seed=0)
    b = LSTMPolicy(encoding, seed=1)
    b.set_weights_state(a.get_weights_state())
    for va, vb in zip(a.trainable_variables, b.trainable_variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert a.sample((4, 4)) == b.sample((4, 4))


def test_weights_of_another_shape_are_refused_before_any_is_assigned(encoding):
    a = LSTMPolicy(encoding, PolicyNetworkConfig(lstm_units=8), seed=0)
    b = LSTMPolicy(encoding, PolicyNetworkConfig(lstm_units=9), seed=0)
    before = [v.numpy().copy() for v in b.trainable_variables]
    with pytest.raises(ValueError, match=r"policy weight \d+ .*shape \[.*\] does not match"):
        b.set_weights_state(a.get_weights_state())
    for v, old in zip(b.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), old)


def test_array_encoding_is_exact_for_scalars_and_tensors():
    for array in (np.float32(0.1), np.arange(12, dtype=np.float32).reshape(3, 4) / 7):
        data = encode_array(array)
        np.testing.assert_array_equal(decode_array(data, np.shape(array), "x"), array)
    with pytest.raises(ValueError, match="x: shape \\[2\\] does not match \\[3\\]"):
        decode_array(encode_array(np.zeros(2)), (3,), "x")


@pytest.mark.parametrize("kwargs", [{"lstm_units": 0}, {"lstm_layers": 0}, {"embedding_size": -1}, {"init_range": 0.0}])
def test_bad_sizes_are_refused(encoding, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ControllerConfigError, match=f"controller.policy.{name} is"):
        LSTMPolicy(encoding, PolicyNetworkConfig(**kwargs))

"""REINFORCE on the LSTM policy: it learns, handles stale results, and keeps bad rewards out."""

import math

import numpy as np
import pytest

from controller import ControllerConfigError, PolicyGradientConfig, ReinforceController


def test_reinforce_mean_reward_rises_on_a_toy_reward(encoding, target_reward, learning_curve):
    """300 updates (one per result) on 'match SpineNet-49's decisions' (optimum 1.0)."""
    c = ReinforceController(encoding, seed=0, training=PolicyGradientConfig(learning_rate=0.01, update_every=1))
    rewards = learning_curve(c, target_reward, 300)
    first, last = rewards[:50].mean(), rewards[-50:].mean()
    assert c.policy_version == 300
    assert last > first + 0.15, (first, last)
    assert last > 0.5  # uniform random search averages about 0.3 here
    assert c.stats()["sample_entropy"] < 60  # the distribution sharpened (uniform-ish start: about 80 nats)


def test_first_reward_sets_the_baseline_then_it_moves_by_the_decay(encoding):
    c = ReinforceController(encoding, seed=0, training=PolicyGradientConfig(baseline_decay=0.9, update_every=100))
    c.feedback(c.propose(), 1.0)
    assert c.stats()["baseline"] == 1.0
    c.feedback(c.propose(), 0.0)
    assert c.stats()["baseline"] == pytest.approx(0.9)
    state = c.get_state()["algorithm_state"]
    assert [item["advantage"] for item in state["buffer"]] == pytest.approx([0.0, -1.0])


def test_stale_results_use_stored_log_probs_and_truncated_importance_weights(encoding, target_reward):
    c = ReinforceController(
        encoding, seed=1, training=PolicyGradientConfig(learning_rate=0.05, update_every=2, max_importance_weight=0.5)
    )
    old = [c.propose() for _ in range(4)]
    assert {p.policy_version for p in old} == {0}
    for p in old[:2]:
        c.feedback(p, target_reward(p.decisions))
    stats = c.stats()
    assert stats["policy_version"] == 1 and stats["staleness"] == 0
    assert stats["log_ratio"] == pytest.approx(0.0, abs=1e-4)  # fresh: the sampler's own log-probs
    assert stats["importance_weight"] == pytest.approx(0.5)  # ratio ~1, capped at 0.5
    for p in old[2:]:  # sampled by version 0, answered after the update
        c.feedback(p, target_reward(p.decisions))
    stats = c.stats()
    assert stats["policy_version"] == 2 and stats["staleness"] == 1
    assert stats["log_ratio"] != pytest.approx(0.0, abs=1e-4)  # the policy moved since they were sampled
    assert 0 < stats["importance_weight"] <= 0.5
    assert c.propose().policy_version == 2


def test_non_finite_rewards_leave_weights_and_baseline_untouched(encoding):
    c = ReinforceController(encoding, seed=0, training=PolicyGradientConfig(update_every=1))
    c.feedback(c.propose(), 0.5)
    weights = [v.numpy().copy() for v in c.policy.trainable_variables]
    before = c.stats()
    for bad in (math.nan, math.inf, -math.inf):
        c.feedback(c.propose(), bad)
    after = c.stats()
    assert after["failures"] == 3 and after["policy_version"] == before["policy_version"]
    assert after["baseline"] == before["baseline"]
    for v, w in zip(c.policy.trainable_variables, weights):
        np.testing.assert_array_equal(v.numpy(), w)


def test_fixed_failure_reward_is_learned_and_weights_stay_finite(encoding):
    c = ReinforceController(
        encoding, seed=0, failure_policy="fixed", failure_reward=-1.0, training=PolicyGradientConfig(update_every=2)
    )
    c.feedback(c.propose(), 0.5)
    c.feedback(c.propose(), math.nan)  # counts as -1.0
    assert c.stats()["policy_version"] == 1
    assert c.get_state()["algorithm_state"]["baseline"] == pytest.approx(0.95 * 0.5 - 0.05)
    assert all(np.isfinite(v.numpy()).all() for v in c.policy.trainable_variables)


def test_gradient_is_clipped_to_the_global_norm(encoding):
    c = ReinforceController(
        encoding, seed=0, training=PolicyGradientConfig(update_every=2, grad_clip_norm=1e-3, learning_rate=0.1)
    )
    c.feedback(c.propose(), 0.0)
    c.feedback(c.propose(), 100.0)
    assert c.stats()["grad_norm"] > 1e-3  # the norm before clipping is reported


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rate": 0.0}, "learning_rate is 0.0; must be > 0"),
        ({"baseline_decay": 1.0}, r"baseline_decay is 1.0; must be in \[0, 1\)"),
        ({"update_every": 0}, "update_every is 0; must be >= 1"),
        ({"max_importance_weight": -1.0}, "max_importance_weight is -1.0"),
    ],
)
def test_bad_hyperparameters_are_refused(encoding, kwargs, message):
    with pytest.raises(ControllerConfigError, match="controller.policy_gradient." + message):
        ReinforceController(encoding, seed=0, training=PolicyGradientConfig(**kwargs))

"""PPO on the LSTM policy: it learns, and its clipped ratio is against the sampling policy."""

import pytest

from controller import ControllerConfigError, PolicyGradientConfig, PPOConfig, PPOController


def test_ppo_mean_reward_rises_on_a_toy_reward(encoding, target_reward, learning_curve):
    c = PPOController(
        encoding, seed=0, training=PolicyGradientConfig(learning_rate=0.01, update_every=4), ppo=PPOConfig(epochs=2)
    )
    rewards = learning_curve(c, target_reward, 320)
    first, last = rewards[:60].mean(), rewards[-60:].mean()
    assert c.policy_version == 80
    assert last > first + 0.1, (first, last)


def test_stale_results_are_clipped_against_the_policy_that_sampled_them(encoding, target_reward):
    c = PPOController(
        encoding,
        seed=1,
        training=PolicyGradientConfig(learning_rate=0.05, update_every=2),
        ppo=PPOConfig(epochs=3, clip_ratio=0.1),
    )
    old = [c.propose() for _ in range(4)]
    for p in old[:2]:
        c.feedback(p, target_reward(p.decisions))
    for p in old[2:]:  # sampled by version 0, answered after the update
        c.feedback(p, target_reward(p.decisions))
    stats = c.stats()
    assert stats["policy_version"] == 2 and stats["staleness"] == 1
    assert stats["log_ratio"] != pytest.approx(0.0, abs=1e-4)


def test_ppo_refuses_a_bad_clip(encoding):
    with pytest.raises(ControllerConfigError, match=r"controller.ppo.clip_ratio is 1.5; must be in \(0, 1\)"):
        PPOController(encoding, seed=0, ppo=PPOConfig(clip_ratio=1.5))

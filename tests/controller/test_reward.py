"""Reward: raw AP by default, MnasNet-style cost-aware on request, failures never become numbers."""

import math

import numpy as np
import pytest

from controller import RewardConfig, RewardError, compute_reward, reward_or_failure


def test_raw_metric_by_default():
    assert compute_reward(RewardConfig(), {"AP": 0.312, "AP50": 0.5}) == 0.312
    assert compute_reward(RewardConfig(metric="AP50"), {"AP": 0.312, "AP50": 0.5}) == 0.5
    assert compute_reward(RewardConfig(), {"AP": np.float32(0.25)}) == 0.25


@pytest.mark.parametrize(
    "metrics, message",
    [
        ({"AP50": 0.4}, "metric 'AP' is missing from the trial's metrics; it reported: AP50"),
        ({}, "it reported: none"),
        ({"AP": math.nan}, "metric 'AP' is nan; expected a finite number"),
        ({"AP": math.inf}, "metric 'AP' is inf; expected a finite number"),
        ({"AP": None}, "metric 'AP' is None; expected a number"),
        ({"AP": "0.3"}, "metric 'AP' is '0.3'; expected a number"),
        ({"AP": -1.0}, "pycocotools' -1"),
    ],
)
def test_unusable_metrics_raise(metrics, message):
    with pytest.raises(RewardError, match=message):
        compute_reward(RewardConfig(), metrics)
    reward, failure = reward_or_failure(RewardConfig(), metrics)
    assert reward is None and failure.startswith("no usable reward: ") and message.split(";")[0][:20] in failure


def test_reward_or_failure_gives_the_feedback_pair():
    assert reward_or_failure(RewardConfig(), {"AP": 0.3}) == (0.3, None)


def test_cost_aware_reward_is_mnasnet_soft_constraint():
    config = RewardConfig(cost="multiply_adds", cost_target=2e9)
    costs = {"multiply_adds": 4e9, "params": 1e6}
    assert compute_reward(config, {"AP": 0.3}, costs) == pytest.approx(0.3 * 2.0**-0.07)
    assert compute_reward(config, {"AP": 0.3}, {"multiply_adds": 1e9}) == pytest.approx(0.3 * 0.5**-0.07)
    assert compute_reward(config, {"AP": 0.3}, {"multiply_adds": 2e9}) == pytest.approx(0.3)


def test_hard_constraint_ignores_cost_within_budget():
    config = RewardConfig(cost="params", cost_target=5e6, exponent_within_budget=0.0, exponent_over_budget=-1.0)
    assert compute_reward(config, {"AP": 0.4}, {"params": 1e6}) == pytest.approx(0.4)
    assert compute_reward(config, {"AP": 0.4}, {"params": 1e7}) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "costs, message",
    [
        (None, "cost 'params' is needed for the cost-aware reward; costs given: none"),
        ({"multiply_adds": 1e9}, "costs given: multiply_adds"),
        ({"params": math.nan}, "cost 'params' is nan"),
        ({"params": 0}, "cost 'params' is 0.0; must be > 0"),
    ],
)
def test_missing_or_bad_cost_raises(costs, message):
    with pytest.raises(RewardError, match=message):
        compute_reward(RewardConfig(cost="params", cost_target=1e6), {"AP": 0.3}, costs)


@pytest.mark.parametrize(
    "config, message",
    [
        (RewardConfig(metric=""), "reward.metric must be a non-empty"),
        (RewardConfig(cost="flops"), "reward.cost 'flops' is unknown; allowed none, multiply_adds, params"),
        (RewardConfig(cost="params"), "reward.cost_target is 0.0; a cost-aware reward needs a target > 0"),
        (RewardConfig(exponent_over_budget=0.5), "reward.exponent_over_budget is 0.5; must be finite and <= 0"),
    ],
)
def test_validate_names_the_field(config, message):
    with pytest.raises(ValueError, match=message):
        config.validate()
    RewardConfig().validate()

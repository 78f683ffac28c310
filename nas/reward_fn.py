"""The reward of a trial, computed by the search driver from the trial's metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.reward import COST_NONE, compute_reward
from search_space import Architecture


def architecture_costs(config: Any, architecture: Architecture) -> dict[str, int]:
    """Parameters and multiply-adds of the proxy model the experiment trains (the cost model; no TensorFlow)."""
    cost = config.model.cost(architecture)
    return {"params": cost.params, "multiply_adds": cost.multiply_adds}


def build_reward_fn(config: Any) -> Callable[[dict[str, Any], Architecture], float]:
    """``fn(metrics, architecture) -> reward`` for the experiment's reward config.

    The function raises ``controller.reward.RewardError`` when the metrics
    give no usable reward; the loop records that as the trial's failure.
    """
    reward_config = config.reward

    def reward_fn(metrics: dict[str, Any], architecture: Architecture) -> float:
        costs = None if reward_config.cost == COST_NONE else architecture_costs(config, architecture)
        return compute_reward(reward_config, metrics, costs)

    return reward_fn

"""The reward of a trial, computed by the search driver from the trial's metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.reward import COST_NONE, compute_reward
from search_space import Architecture


def architecture_costs(config: Any, architecture: Architecture) -> dict[str, int]:
    """Parameters and multiply-adds of the proxy model the experiment trains, from the cost model."""
    from search_space.cost_model import model_cost

    model = config.model
    preset_head = None
    if getattr(model, "model_id", None):
        from search_space import model_preset

        preset = model_preset(model.model_id)
        architecture = architecture.with_scaling(preset.scaling)
        preset_head = (preset.head_num_convs, preset.head_num_filters)
    convs = getattr(model, "head_num_convs", None) or (preset_head[0] if preset_head else 4)
    filters = getattr(model, "head_num_filters", None) or (preset_head[1] if preset_head else 256)
    cost = model_cost(
        architecture,
        input_size=model.input_size,
        num_classes=model.num_classes,
        head_num_convs=convs,
        head_num_filters=filters,
        num_anchors=model.num_scales * len(model.aspect_ratios),
        min_level=model.min_level,
        max_level=model.max_level,
    )
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

"""From a trial's metrics to the reward a controller learns from.

By default the reward is the raw detection metric (COCO box ``AP``, SpineNet
section 5.1). Optionally it is cost-aware, MnasNet style (Tan et al., CVPR
2019, equation 2)::

    reward = metric * (cost / cost_target) ** w
    w = exponent_within_budget if cost <= cost_target else exponent_over_budget

with the cost (multiply-adds or parameters) computed by the caller, e.g. with
the search space's cost model. MnasNet's soft constraint is
``w = -0.07`` on both sides; its hard constraint is ``0`` within the budget and
``-1`` over it.

A trial's metrics never turn silently into a number: a missing metric, a
value that is not a finite number, or a negative one (pycocotools reports -1
when there is no ground truth to score) raises ``RewardError``, whose message
the search loop records as the trial's failure.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

COST_NONE = "none"
# Cost measures a cost-aware reward may use; the caller supplies the numbers.
COST_MEASURES = ("multiply_adds", "params")
# The rewards of a trial a multi-fidelity search stopped early (``nas.fidelity``).
LOW_FIDELITY_REWARDS = ("calibrated", "raw", "skip")
# MnasNet's soft-constraint exponent (Tan et al. 2019, section 3).
MNASNET_EXPONENT = -0.07


class RewardError(ValueError):
    """A trial's metrics give no usable reward; the message says why."""


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """How metrics become a reward.

    Attributes:
      metric: the metric key the evaluator reports (COCO box ``AP``).
      cost: ``"none"`` (raw metric), ``"multiply_adds"`` or ``"params"``.
      cost_target: the budget in the cost's unit (e.g. ``85.4e9`` multiply-adds).
      exponent_within_budget: ``w`` when cost <= target.
      exponent_over_budget: ``w`` when cost > target.
      low_fidelity: the reward of a trial that a multi-fidelity search
        (``search.fidelity=asha``) stopped at a lower rung: ``calibrated``
        (its metric mapped onto the final rung's scale by a monotone fit on
        the trials that finished both rungs, ``nas.fidelity``), ``raw`` (the
        metric at that rung as it is) or ``skip`` (no reward: the controller
        is told the proposal failed, which its ``failure_policy`` handles).
    """

    metric: str = "AP"
    cost: str = COST_NONE
    cost_target: float = 0.0
    exponent_within_budget: float = MNASNET_EXPONENT
    exponent_over_budget: float = MNASNET_EXPONENT
    low_fidelity: str = "calibrated"

    def validate(self) -> None:
        """Raises ValueError naming the first bad field."""
        if not self.metric:
            raise ValueError("reward.metric must be a non-empty metric key, e.g. 'AP'")
        allowed = (COST_NONE, *COST_MEASURES)
        if self.cost not in allowed:
            raise ValueError(f"reward.cost {self.cost!r} is unknown; allowed {', '.join(allowed)}")
        if self.cost != COST_NONE and not (math.isfinite(self.cost_target) and self.cost_target > 0):
            raise ValueError(f"reward.cost_target is {self.cost_target!r}; a cost-aware reward needs a target > 0")
        if self.low_fidelity not in LOW_FIDELITY_REWARDS:
            raise ValueError(
                f"reward.low_fidelity {self.low_fidelity!r} is unknown; allowed {', '.join(LOW_FIDELITY_REWARDS)}"
            )
        for name in ("exponent_within_budget", "exponent_over_budget"):
            value = getattr(self, name)
            if not math.isfinite(value) or value > 0:
                raise ValueError(f"reward.{name} is {value!r}; must be finite and <= 0 (a larger cost never helps)")


def _finite_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RewardError(f"{what} is {value!r}; expected a number")
    value = float(value)
    if not math.isfinite(value):
        raise RewardError(f"{what} is {value!r}; expected a finite number")
    return value


def compute_reward(config: RewardConfig, metrics: Mapping[str, Any], costs: Mapping[str, Any] | None = None) -> float:
    """The reward of one trial.

    Args:
      config: the reward definition.
      metrics: the evaluator's metrics, e.g. ``{"AP": 0.31, "AP50": 0.5}``.
      costs: the architecture's costs by measure, e.g.
        ``{"multiply_adds": 2.1e9, "params": 3.2e6}``; needed only for a
        cost-aware reward.

    Returns:
      A finite reward.

    Raises:
      RewardError: the metric or cost is missing, not a finite number, or
        negative; the message names it and what was there instead.
    """
    if config.metric not in metrics:
        known = ", ".join(sorted(map(str, metrics))) or "none"
        raise RewardError(f"metric {config.metric!r} is missing from the trial's metrics; it reported: {known}")
    value = _finite_number(metrics[config.metric], f"metric {config.metric!r}")
    if value < 0:
        raise RewardError(
            f"metric {config.metric!r} is {value}; a negative value (pycocotools' -1) means nothing was scored"
        )
    if config.cost == COST_NONE:
        return value
    if costs is None or config.cost not in costs:
        known = ", ".join(sorted(map(str, costs or {}))) or "none"
        raise RewardError(f"cost {config.cost!r} is needed for the cost-aware reward; costs given: {known}")
    cost = _finite_number(costs[config.cost], f"cost {config.cost!r}")
    if cost <= 0:
        raise RewardError(f"cost {config.cost!r} is {cost}; must be > 0")
    ratio = cost / config.cost_target
    exponent = config.exponent_within_budget if ratio <= 1 else config.exponent_over_budget
    return value * ratio**exponent


def reward_or_failure(
    config: RewardConfig, metrics: Mapping[str, Any], costs: Mapping[str, Any] | None = None
) -> tuple[float | None, str | None]:
    """``compute_reward`` as the pair a controller's ``feedback`` takes.

    Returns:
      ``(reward, None)``, or ``(None, message)`` when the metrics give no
      usable reward; so ``controller.feedback(p, reward, failure=message)``.
    """
    try:
        return compute_reward(config, metrics, costs), None
    except RewardError as e:
        return None, f"no usable reward: {e}"

"""The Pareto front of a search: architectures no other beats on both accuracy and cost.

A few lines of our own rather than a dependency: the front of points in two
dimensions is one sort and one sweep, and the libraries that offer it
(pymoo, paretoset, DEAP) are far larger than the need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def pareto_front(costs: Sequence[float], values: Sequence[float]) -> list[int]:
    """Indices of the points that no other point dominates, by increasing cost.

    A point dominates another when its cost is no higher and its value no
    lower, and it is strictly better in one of the two. Of points equal in
    both, the first is on the front.

    Args:
      costs: lower is better (multiply-adds, parameters).
      values: higher is better (AP).

    Returns:
      The indices of the front, cheapest first (so values strictly increase).
    """
    if len(costs) != len(values):
        raise ValueError(f"{len(costs)} costs but {len(values)} values")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -values[i], i))
    front, best = [], float("-inf")
    for i in order:
        if values[i] > best:
            front.append(i)
            best = values[i]
    return front


COSTS = {"multiply_adds": ("multiply-adds (billions)", 1e9), "params": ("parameters (millions)", 1e6)}


def trial_costs(config: Any, trial: Any, cache: dict[str, dict[str, int]]) -> dict[str, int]:
    """Parameters and multiply-adds of a trial: its own metrics, else the cost model (cached by fingerprint)."""
    metrics = trial.metrics or {}
    if isinstance(metrics.get("params"), int) and isinstance(metrics.get("multiply_adds"), int):
        return {"params": metrics["params"], "multiply_adds": metrics["multiply_adds"]}
    if trial.fingerprint not in cache:
        from nas.reward_fn import architecture_costs
        from search_space import architecture_from_dict

        cache[trial.fingerprint] = architecture_costs(config, architecture_from_dict(trial.architecture)[0])
    return cache[trial.fingerprint]


def search_front(config: Any, trials: Iterable[Any], key: str | None = None) -> dict[str, Any]:
    """The Pareto front of a search's completed trials: the reward's metric against a cost.

    Args:
      config: the search's experiment config.
      trials: its trials (those completed, not reused, with a numeric metric count).
      key: ``multiply_adds`` or ``params``; default the reward's cost, else multiply-adds.

    Returns:
      ``cost`` (the key), ``metric``, ``cost_target`` (a cost-aware reward's, else None), ``points``
      (trial id, metric, cost, reward of every counted trial) and ``front`` (indices into ``points``,
      cheapest first).
    """
    reward = config.reward
    key = key or (reward.cost if reward.cost in COSTS else "multiply_adds")
    cache: dict[str, dict[str, int]] = {}
    points = []
    for t in trials:
        value = (t.metrics or {}).get(reward.metric)
        if t.status != "completed" or t.reused_from is not None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        points.append(
            {
                "trial_id": t.trial_id,
                "value": float(value),
                "cost": trial_costs(config, t, cache)[key],
                "reward": t.reward,
            }
        )
    front = pareto_front([p["cost"] for p in points], [p["value"] for p in points])
    target = reward.cost_target if reward.cost == key else None
    return {"cost": key, "metric": reward.metric, "cost_target": target, "points": points, "front": front}

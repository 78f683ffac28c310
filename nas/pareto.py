"""The Pareto front of a search: architectures no other beats on both accuracy and cost.

A few lines of our own rather than a dependency: the front of points in two
dimensions is one sort and one sweep, and the libraries that offer it
(pymoo, paretoset, DEAP) are far larger than the need.
"""

from __future__ import annotations

from collections.abc import Sequence


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

"""Exact search-space sizes with Python integers (paper section 3.1).

The paper counts blocks as distinguishable: a scale permutation orders N-K
intermediate and K output blocks separately, (N-K)! * K! orderings, even when
two blocks share a level. The decision encoding instead picks levels, so it
enumerates distinct level sequences; the two counts differ when levels repeat.

Resource distribution (docs/search_space.md#resource-distribution) multiplies
in each block's width and repeat choices; a space with a fixed topology
searches nothing else, so its permutations, connections and adjustments
count 1.
"""

from __future__ import annotations

import dataclasses
import math

from search_space.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class SpaceSize:
    """Sizes of the three search dimensions and their products."""

    num_blocks: int
    permutations: int
    connections: int
    adjustments: int
    total: int
    connections_windowed: int
    total_windowed: int
    resources: int = 1


def space_size(space: SearchSpace) -> SpaceSize:
    """Sizes of ``space`` by the paper's formulas.

    - permutations: (N-K)! * K! (K = number of outputs, 5 in the paper);
    - connections: prod_{i=m}^{N+m-1} C(i, 2): block i picks 2 of the i
      entries built before it;
    - adjustments: (#level shifts)^(N-K) * (#block types)^N, which is
      4^(N-5) * 2^N for the full space;
    - the windowed variants restrict intermediate blocks to the last
      ``parent_window`` entries: C(min(i, window), 2);
    - resources: (#width multipliers * #repeat counts)^N, each count 1 when
      the option is off; it multiplies both totals;
    - a fixed topology: permutations, connections and adjustments are 1.

    Args:
      space: the search space.

    Returns:
      A SpaceSize of exact integers.
    """
    n, k, m = space.num_blocks, space.num_outputs, space.num_stem
    permutations = math.factorial(n - k) * math.factorial(k)
    connections = 1
    windowed = 1
    for j in range(n):
        i = m + j  # entries built before block j
        connections *= math.comb(i, 2)
        is_intermediate = j < n - k
        if is_intermediate and space.parent_window is not None:
            windowed *= math.comb(min(i, space.parent_window), 2)
        else:
            windowed *= math.comb(i, 2)
    adjustments = len(space.level_shifts) ** (n - k) * len(space.block_fns) ** n
    resources = (max(1, len(space.width_multipliers)) * max(1, len(space.block_repeats))) ** n
    if space.fixed_topology is not None:
        permutations = connections = windowed = adjustments = 1
    return SpaceSize(
        num_blocks=n,
        permutations=permutations,
        connections=connections,
        adjustments=adjustments,
        total=permutations * connections * adjustments * resources,
        connections_windowed=windowed,
        total_windowed=permutations * windowed * adjustments * resources,
        resources=resources,
    )

"""Resource distribution searches: a found topology kept, each block's width and repeats searched.

The Mobile paper's step (docs/search_space.md#resource-distribution): with
the scale permutation and connections of a previously found architecture
fixed, a search learns how to spread a budget over its blocks. The reward is
MnasNet's hard constraint (``controller.reward``): the AP itself within the
budget, AP x (multiply-adds / budget) ** -1 over it, with the budget the
fixed topology's cost at uniform resources (every block x1.0, 1 repeat), so a
distribution is rewarded for accuracy, not for saving, as long as it spends no
more than the uniform network. The width and repeat choices are the issue's;
the budget and the constraint are this project's choices.
"""

from __future__ import annotations

import dataclasses

from controller.reward import RewardConfig
from experiments.config import ExperimentConfig
from experiments.spinenet_mobile import spinenet_mobile_coco_proxy
from experiments.synthetic import synthetic_smoke
from search_space import Architecture, SearchSpace

RESOURCE_WIDTH_MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5)
RESOURCE_BLOCK_REPEATS = (1, 2, 3)
# MnasNet's hard constraint (Tan et al. 2019, section 3): no reward for staying below the budget,
# the reward divided by the overrun above it.
HARD_WITHIN_BUDGET = 0.0
HARD_OVER_BUDGET = -1.0


def resource_space(space: SearchSpace, topology: str) -> SearchSpace:
    """``space`` with ``topology`` (``preset:NAME`` or a file) kept and the blocks' resources searched."""
    return dataclasses.replace(
        space,
        fixed_topology=topology,
        width_multipliers=RESOURCE_WIDTH_MULTIPLIERS,
        block_repeats=RESOURCE_BLOCK_REPEATS,
    )


def _resource_variant(base: ExperimentConfig, name: str, topology: str, description: str) -> ExperimentConfig:
    space = resource_space(base.search_space, topology)
    uniform = Architecture(space.fixed_blocks(), space.stem(), space.scaling)
    budget = float(base.model.cost(uniform).multiply_adds)
    reward = RewardConfig(
        cost="multiply_adds",
        cost_target=budget,
        exponent_within_budget=HARD_WITHIN_BUDGET,
        exponent_over_budget=HARD_OVER_BUDGET,
    )
    return dataclasses.replace(base, name=name, description=description, search_space=space, reward=reward)


def synthetic_resource_smoke() -> ExperimentConfig:
    """``synthetic_smoke`` with SpineNet-49's topology kept: 15 widths and 15 repeat counts searched.

    The same data, proxy, recipe, controller and 36 trials as the quick
    start; 30 decisions (5 widths x 3 repeat counts per block, 15^15
    distributions); the budget is SpineNet-49's cost at this scale. A trial
    costs up to 3 times a quick-start trial (repeats x3 on the widest blocks).
    """
    return _resource_variant(
        synthetic_smoke(),
        "synthetic_resource_smoke",
        "preset:spinenet49",
        "SpineNet-49 kept, each block's width and repeats searched on generated shapes within its cost",
    )


def spinenet_mobile_resource_coco_proxy() -> ExperimentConfig:
    """``spinenet_mobile_coco_proxy`` with SpineNet-Mobile-49's topology kept, its resources searched.

    The Mobile proxy on COCO (Mobile-49 at 384 px, swish); 32 decisions
    (15^16 distributions); the budget is Mobile-49's own cost, about 1.0B
    multiply-adds.
    """
    return _resource_variant(
        spinenet_mobile_coco_proxy(),
        "spinenet_mobile_resource_coco_proxy",
        "preset:spinenet_mobile49",
        "SpineNet-Mobile-49 kept, each block's width and repeats searched on held-out COCO within its cost",
    )

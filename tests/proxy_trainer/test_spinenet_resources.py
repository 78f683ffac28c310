"""Per-block width multipliers and repeat counts in Keras: exact against the cost model, repeats chained.

For random architectures with random resources, of bottleneck and residual
blocks and of MBConv blocks, the built model's ``count_params()`` equals the
cost model's parameters and the float operations counted from its graph
(``graph_cost``, the profiler's conventions) equal the cost model's.
"""

import dataclasses
import random

import pytest

from proxy_trainer.detector.config import LayerSpec
from proxy_trainer.detector.retinanet import build_retinanet, build_spinenet_backbone
from search_space import (
    MBCONV,
    DecisionEncoding,
    Scaling,
    SearchSpace,
    sample_architecture,
    spinenet49,
    spinenet_mobile49,
)
from search_space.cost_model import model_cost
from search_space.space import SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION
from tests.proxy_trainer.graph_cost import graph_flops

WIDTHS = (0.5, 0.75, 1.0, 1.25, 1.5)
REPEATS = (1, 2, 3)
SMALL = Scaling(0.125, 0.5, 8, 1)
MOBILE_SMALL = Scaling(0.25, 0.5, 8, 1)


def _spaces():
    options = dict(width_multipliers=WIDTHS, block_repeats=REPEATS)
    few = ((2, 1), (4, 1))
    return [
        SearchSpace(level_allocation=few, parent_window=None, scaling=SMALL, **options),
        SearchSpace(level_allocation=((3, 1), (5, 1)), parent_window=3, scaling=Scaling(0.125, 1.0, 16, 2), **options),
        SearchSpace(scaling=SMALL, fixed_topology="preset:spinenet49", **options),
        SearchSpace(level_allocation=few, block_fns=(MBCONV,), scaling=MOBILE_SMALL, **options),
        SearchSpace(
            level_allocation=SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION,
            block_fns=(MBCONV,),
            scaling=MOBILE_SMALL,
            fixed_topology="preset:spinenet_mobile49",
            **options,
        ),
    ]


def random_resource_architectures(count=8, seed=1616):
    """Random members of small resource spaces (both families), 64 or 128 px."""
    spaces = _spaces()
    rng = random.Random(seed)
    return [(sample_architecture(DecisionEncoding(spaces[i % len(spaces)]), rng), 64 << (i % 2)) for i in range(count)]


@pytest.mark.parametrize("arch, input_size", random_resource_architectures())
def test_random_resources_build_exactly_what_the_cost_model_counts(arch, input_size):
    assert {b.width_multiplier for b in arch.blocks} != {1.0} and {b.block_repeats for b in arch.blocks} != {1}
    activation = "swish" if arch.family == "spinenet_mobile" else "relu"
    model = build_spinenet_backbone(arch, input_size=input_size, spec=LayerSpec(activation=activation))
    cost = model_cost(arch, input_size=input_size, activation=activation)
    assert model.count_params() == cost.backbone_params
    assert graph_flops(model) == cost.backbone_flops
    shapes = {k: tuple(v.shape[1:]) for k, v in model.output.items()}
    assert shapes == {str(lv): (h, w, c) for lv, h, w, c in cost.endpoint_shapes}


@pytest.mark.parametrize("index", [2, 3])
def test_the_retinanet_on_a_resource_architecture_is_costed_exactly(index):
    arch, input_size = random_resource_architectures()[index]
    separable = arch.family == "spinenet_mobile"
    model = build_retinanet(
        arch, input_size=input_size, num_classes=4, head_num_convs=2, head_num_filters=8, head_separable=separable
    )
    cost = model_cost(
        arch, input_size=input_size, num_classes=4, head_num_convs=2, head_num_filters=8, head_separable=separable
    )
    assert (model.count_params(), graph_flops(model)) == (cost.params, cost.flops)


@pytest.mark.parametrize("family", ["spinenet", "spinenet_mobile"])
def test_repeats_are_chained_not_applied_to_the_group_input(family):
    if family == "spinenet":  # block 2 is an L2 bottleneck; its output is the activation after the add
        base, first, last = spinenet49(SMALL), "1x1a_conv", "out"
    else:  # block 2 is an L2 MBConv that keeps its width, so its input is added back
        base, first, last = spinenet_mobile49(MOBILE_SMALL), "expand_conv", "add"
    blocks = list(base.blocks)
    blocks[0] = dataclasses.replace(blocks[0], width_multiplier=1.5, block_repeats=3)
    model = build_spinenet_backbone(dataclasses.replace(base, blocks=tuple(blocks)), input_size=64)
    # The first repeat reads the fused parents, each later one the output of the repeat before it.
    assert model.get_layer(f"block2_r0_{first}").input is model.get_layer("block2_sum_act").output
    for r in (1, 2):
        assert model.get_layer(f"block2_r{r}_{first}").input is model.get_layer(f"block2_r{r - 1}_{last}").output
    assert not any(layer.name.startswith("block2_r3_") for layer in model.layers)

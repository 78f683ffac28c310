"""SpineNet-Mobile in the search space: its presets' cost, its space, its files (pure Python).

The figures below are Model Garden's SpineNetMobile (tf-models-official 2.20.0) measured at batch 1,
RetinaNet with 90 classes and 4 separable head convs of the endpoint width, multiply-adds = profiler
float ops / 2 (issue 16; docs/search_space.md#spinenet-mobile). The Keras side is tested in
tests/proxy_trainer/test_spinenet_mobile.py.
"""

import json
import random

import pytest

from search_space import (
    MBCONV,
    MODEL_PRESETS,
    SPINENET_MOBILE,
    Architecture,
    ArchitectureError,
    BlockSpec,
    DecisionEncoding,
    Scaling,
    SearchSpace,
    StemBlock,
    architecture_from_block_specs,
    architecture_from_dict,
    architecture_preset,
    architecture_to_block_specs,
    architecture_to_dict,
    load_architecture,
    sample_architecture,
    space_size,
    spinenet49,
    spinenet_mobile49,
)
from search_space.cost_model import model_cost
from search_space.presets import scaling_for
from search_space.space import SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION

# model id: (input size, backbone params, backbone multiply-adds, RetinaNet params, RetinaNet multiply-adds)
PUBLISHED = {
    "mobile49": (384, 2_313_892, 0.825e9, 2_386_162, 1.023e9),
    "mobile49S": (384, 1_004_872, 0.366e9, 1_062_678, 0.523e9),
    "mobile49XS": (256, 869_400, 0.136e9, 901_350, 0.174e9),
}


def mobile_retinanet_cost(model_id, input_size, **kwargs):
    preset = MODEL_PRESETS[model_id]
    return model_cost(
        architecture_preset("spinenet_mobile49", model_id),
        input_size=input_size,
        num_classes=90,
        head_num_convs=preset.head_num_convs,
        head_num_filters=preset.head_num_filters,
        head_separable=preset.head_separable,
        activation=preset.activation,
        **kwargs,
    )


def mobile_space(**kwargs):
    return SearchSpace(level_allocation=SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION, block_fns=(MBCONV,), **kwargs)


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_the_mobile_presets_cost_what_the_reference_does(model_id):
    size, backbone_params, backbone_madds, params, madds = PUBLISHED[model_id]
    cost = mobile_retinanet_cost(model_id, size)
    assert (cost.backbone_params, cost.params) == (backbone_params, params)
    assert abs(cost.backbone_multiply_adds / backbone_madds - 1) < 0.005
    assert abs(cost.multiply_adds / madds - 1) < 0.005


def test_mobile49_float_ops_equal_the_reference_profiler():
    # Profiler float ops of the reference's frozen inference graph with hard-swish, less the 2 integer
    # shape multiplications of each of its 5 upsamplings (10), as for SpineNet-49
    # (bench/bench_mobile.py measures this for every preset and random architectures).
    cost = mobile_retinanet_cost("mobile49", 384)
    assert (cost.backbone_flops, cost.flops) == (1_649_286_806 - 10, 2_045_500_844 - 10)


def test_activations_cost_what_the_profiler_counts():
    # The same model with ReLU (no float op), swish (2 per element) and hard-swish (3 per element):
    # the reference's profiler counts 1,587,910,406, 1,628,828,006 and 1,649,286,806 float ops.
    arch = spinenet_mobile49()
    flops = {a: model_cost(arch, input_size=384, activation=a).backbone_flops + 10 for a in ("relu", "swish")}
    assert flops == {"relu": 1_587_910_406, "swish": 1_628_828_006}
    with pytest.raises(ArchitectureError, match="activation 'gelu' is unknown"):
        model_cost(arch, input_size=384, activation="gelu")


def test_spinenet_costs_do_not_change_with_relu():
    # ReLU counts no float op, so the SpineNet figures stay those measured before activations counted.
    assert model_cost(spinenet49(), input_size=640).backbone_flops == 56_594_019_210 - 10


def test_the_published_topology_is_spinenet49_shifted_by_one_behind_a_fusing_l2_block():
    arch = spinenet_mobile49()
    assert arch.family == SPINENET_MOBILE and arch.stem == (StemBlock(1, MBCONV), StemBlock(2, MBCONV))
    assert arch.blocks[0] == BlockSpec(2, MBCONV, (0, 1), False)
    for mobile, original in zip(arch.blocks[1:], spinenet49().blocks):
        assert (mobile.level, mobile.is_output) == (original.level, original.is_output)
        assert mobile.parents == tuple(p + 1 for p in original.parents) and mobile.block_fn == MBCONV
    # As in SpineNet-49, one intermediate block (here 12) is consumed by nobody and joins the L5 output.
    assert arch.unconsumed_intermediate() == (12,)
    assert model_cost(arch, input_size=384).blocks[15].merged == (12,)


def test_the_mobile_space_holds_the_published_topology_and_encodes_it():
    space = mobile_space(parent_window=5)
    arch = spinenet_mobile49(space.scaling)
    assert space.family == SPINENET_MOBILE and space.contains(arch)
    encoding = DecisionEncoding(space)
    # 16 levels, 11 shifts, no block type (one choice), 15 parent pairs (the first block's is forced).
    assert len(encoding) == 16 + 11 + 15 * 2
    assert encoding.decode(encoding.encode(arch)) == arch
    rng = random.Random(0)
    for _ in range(20):
        sampled = sample_architecture(encoding, rng)
        assert space.contains(sampled) and sampled.family == SPINENET_MOBILE
    # A window of 3 leaves it out: block 8 takes block 4 as a parent.
    assert not mobile_space(parent_window=3).contains(arch)


def test_mobile_space_sizes():
    size = space_size(mobile_space(parent_window=5))
    assert size.num_blocks == 16
    assert size.permutations == 11 * 10 * 9 * 8 * 7 * 6 * 5 * 4 * 3 * 2 * 120  # (N-5)! 5!
    assert size.adjustments == 4**11  # one block type: no type choice
    assert f"{size.total_windowed:.3e}" == "4.399e+35"


def test_spaces_and_architectures_keep_to_one_family():
    with pytest.raises(ArchitectureError, match="mix families"):
        SearchSpace(block_fns=("bottleneck", MBCONV))
    with pytest.raises(ArchitectureError, match="fixed stem, 2 candidates ending at L2"):
        mobile_space(num_stem=3)
    arch = spinenet_mobile49()
    mixed = Architecture(arch.blocks[:3] + (BlockSpec(4, "residual", (3, 4)),) + arch.blocks[4:], stem=arch.stem)
    with pytest.raises(ArchitectureError, match="block 5: block_fn 'residual' does not go with a spinenet_mobile"):
        architecture_from_dict(architecture_to_dict(mixed))
    with pytest.raises(ArchitectureError, match="the reference's fixed stem"):
        architecture_from_dict({**architecture_to_dict(arch), "stem": [{"level": 2, "block_fn": MBCONV}] * 2})
    with pytest.raises(ArchitectureError, match="block_repeats is 2; a SpineNet-Mobile has 1 block per group"):
        architecture_from_dict(architecture_to_dict(arch.with_scaling(Scaling(1.0, 0.5, 48, 2))))
    with pytest.raises(ArchitectureError, match="model id '49' scales a spinenet, but the architecture is a"):
        scaling_for(arch, "49")
    with pytest.raises(ArchitectureError, match="model id 'mobile49' scales a spinenet_mobile"):
        scaling_for(spinenet49(), "mobile49")


def test_mobile_files_round_trip_and_block_specs_are_the_references_form(tmp_path):
    arch = architecture_preset("spinenet_mobile49S")
    assert arch.scaling == MODEL_PRESETS["mobile49S"].scaling
    assert architecture_from_dict(architecture_to_dict(arch))[0] == arch
    # Without a stem, mbconv blocks get the Mobile stem.
    data = architecture_to_dict(arch)
    del data["stem"]
    assert architecture_from_dict(data)[0] == arch
    # Block specs: the reference's SPINENET_BLOCK_SPECS of spinenet_mobile.py, blocks only.
    specs = architecture_to_block_specs(arch)
    assert len(specs) == 16 and specs[0] == (2, MBCONV, (0, 1), False) and specs[-1] == (6, MBCONV, (13, 15), True)
    assert architecture_from_block_specs(specs, arch.scaling) == arch
    path = tmp_path / "mobile_specs.json"
    path.write_text(json.dumps([[lv, fn, list(p), out] for lv, fn, p, out in specs]))
    assert load_architecture(path)[0] == spinenet_mobile49(Scaling())

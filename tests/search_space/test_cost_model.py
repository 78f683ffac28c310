"""The pure-Python cost model against the published and the reference figures.

The Keras side (the cost model equals the built models) is tested in
tests/proxy_trainer/test_spinenet.py and test_retinanet.py.
"""

import random
import subprocess
import sys
import time

import pytest

from search_space import (
    BOTTLENECK,
    MODEL_PRESETS,
    RESIDUAL,
    Architecture,
    ArchitectureError,
    BlockSpec,
    DecisionEncoding,
    Scaling,
    SearchSpace,
    StemBlock,
    resnet_like,
    sample_architecture,
    spinenet49,
)
from search_space.cost_model import check_buildable, check_input_size, level_size, model_cost

B, R = BOTTLENECK, RESIDUAL


def retinanet_cost(model_id, input_size=640, num_classes=90, **kwargs):
    preset = MODEL_PRESETS[model_id]
    return model_cost(
        spinenet49(preset.scaling),
        input_size=input_size,
        num_classes=num_classes,
        head_num_convs=preset.head_num_convs,
        head_num_filters=preset.head_num_filters,
        **kwargs,
    )


def test_spinenet49_retinanet_matches_the_published_figures():
    # docs/search_space.md#parameters-and-multiply-adds: 28.63M parameters, 85.4B multiply-adds
    # at 640 px, 90 classes, head 4 x 256.
    cost = retinanet_cost("49")
    assert abs(cost.params / 28.63e6 - 1) < 0.005
    assert abs(cost.multiply_adds / 85.4e9 - 1) < 0.01
    assert round(cost.backbone_params / 1e6, 2) == 21.92


def test_spinenet49_matches_the_reference_implementation_exactly():
    # Measured on tf-models-official 2.20.0 (SpineNet + RetinaNetHead, 640 px, 90 classes, 4 x 256):
    # count_params() 21,920,192 / 28,631,822; TF profiler float ops on the frozen inference graph
    # 56,594,019,210 / 170,304,271,360. The profiler also counts 2 integer shape multiplications
    # in each of the reference's 5 nearest-neighbour upsamplings (10 ops), which are no arithmetic.
    cost = retinanet_cost("49")
    assert cost.backbone_params == 21_920_192
    assert cost.params == 28_631_822
    assert cost.backbone_flops == 56_594_019_210 - 10
    assert cost.flops == 170_304_271_360 - 10
    assert cost.multiply_adds == cost.flops // 2


@pytest.mark.parametrize("model_id, millions", [("49S", 9.15), ("49", 21.92), ("96", 36.39), ("143", 60.41)])
def test_backbone_params_match_the_reference(model_id, millions):
    # docs/search_space.md#parameters-and-multiply-adds: the reference backbone alone (stem, blocks,
    # endpoint convs) at 640 px.
    cost = model_cost(spinenet49(MODEL_PRESETS[model_id].scaling), input_size=640)
    assert round(cost.backbone_params / 1e6, 2) == millions
    assert cost.params == cost.backbone_params and cost.head_shapes == ()


@pytest.mark.parametrize(
    "model_id, input_size, params_m, madds_b",
    [("96", 1024, 43.0, 265.4), ("143", 1280, 66.9, 524.4), ("190", 1280, 163.6, 1885.0)],
)
def test_larger_models_match_the_paper(model_id, input_size, params_m, madds_b):
    # docs/search_space.md#parameters-and-multiply-adds (paper Tables 3 and 4): params within 0.5%,
    # multiply-adds within 1%.
    cost = retinanet_cost(model_id, input_size)
    assert abs(cost.params / (params_m * 1e6) - 1) < 0.005
    assert abs(cost.multiply_adds / (madds_b * 1e9) - 1) < 0.01


def test_ten_fewer_classes_remove_about_1_8b_multiply_adds():
    # docs/search_space.md#parameters-and-multiply-adds.
    diff = retinanet_cost("49").multiply_adds - retinanet_cost("49", num_classes=80).multiply_adds
    assert 1.7e9 < diff < 1.9e9


def test_block_table_of_spinenet49():
    cost = retinanet_cost("49")
    assert len(cost.blocks) == 17
    merged = {b.index: b.merged for b in cost.blocks if b.merged}
    # docs/search_space.md#published-spinenet-49: idx 14 (P5) also takes idx 11, which nobody consumes.
    assert merged == {14: (11,)}
    assert all(b.live for b in cost.blocks)
    assert cost.endpoint_shapes == tuple((lv, 640 // 2**lv, 640 // 2**lv, 256) for lv in range(3, 8))
    assert cost.head_shapes[0] == (3, 80, 80, 810, 36)
    stem_conv = 7 * 7 * 3 * 64 + 4 * 64
    endpoints = sum(b.channels * 256 + 4 * 256 for b in cost.blocks if b.is_output)
    assert cost.backbone_params == stem_conv + sum(b.params for b in cost.blocks) + endpoints


def tiny_space(**kwargs):
    return SearchSpace(scaling=Scaling(0.0625, 0.25, 8, 1), **kwargs)


def test_cost_model_needs_no_tensorflow():
    code = "import sys, search_space.cost_model; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_cost_model_is_fast():
    encoding = DecisionEncoding(SearchSpace())
    rng = random.Random(0)
    archs = [sample_architecture(encoding, rng) for _ in range(200)]
    start = time.perf_counter()
    for arch in archs:
        cost = model_cost(arch, input_size=512, num_classes=90)
        assert cost.params > cost.backbone_params > 0
    assert time.perf_counter() - start < 5  # about 1 ms each; the search may cost every proposal


def test_an_unconsumed_block_that_matches_no_output_is_dead():
    # Block 3 (L2 residual) is consumed by nobody and there is no L2 output: it is never built.
    blocks = (
        BlockSpec(4, B, (0, 1)),
        BlockSpec(2, R, (0, 2)),
        BlockSpec(3, B, (0, 2), True),
        BlockSpec(4, B, (1, 4), True),
        BlockSpec(5, B, (2, 5), True),
        BlockSpec(6, B, (5, 6), True),
        BlockSpec(7, B, (6, 7), True),
    )
    cost = model_cost(Architecture(blocks), input_size=128)
    live = {b.index: b.live for b in cost.blocks}
    assert live[3] is False and all(v for k, v in live.items() if k != 3)
    dead = next(b for b in cost.blocks if b.index == 3)
    assert dead.params > 0
    stem_conv = 7 * 7 * 3 * 64 + 4 * 64
    endpoints = sum(b.channels * 256 + 4 * 256 for b in cost.blocks if b.is_output)
    assert cost.backbone_params == stem_conv + sum(b.params for b in cost.blocks if b.live) + endpoints


def test_merge_rule_follows_the_reference_build_order():
    # Block 2 (L4 bottleneck) is not consumed yet when P4 (block 4) is built, so P4 sums it in,
    # as the reference does, although block 5 consumes it later.
    blocks = (
        BlockSpec(4, B, (0, 1)),
        BlockSpec(5, B, (0, 1)),
        BlockSpec(4, B, (0, 3), True),
        BlockSpec(3, B, (2, 4), True),
        BlockSpec(5, B, (3, 4), True),
        BlockSpec(6, B, (5, 6), True),
        BlockSpec(7, B, (6, 7), True),
    )
    cost = model_cost(Architecture(blocks), input_size=128)
    assert {b.index: b.merged for b in cost.blocks if b.merged} == {4: (2,)}


def test_shapes_follow_ceil_of_the_stride():
    assert [level_size(64, lv) for lv in range(2, 8)] == [16, 8, 4, 2, 1, 1]
    cost = model_cost(spinenet49(Scaling(0.0625, 0.25, 8, 1)), input_size=64, num_classes=3, head_num_filters=8)
    assert cost.endpoint_shapes == ((3, 8, 8, 8), (4, 4, 4, 8), (5, 2, 2, 8), (6, 1, 1, 8), (7, 1, 1, 8))
    assert cost.head_shapes[-1] == (7, 1, 1, 27, 36)


@pytest.mark.parametrize("size", [32, 64, 128, 256, 384, 512, 640, 1024, 1280])
def test_input_sizes_that_resample_exactly(size):
    check_input_size(size)


@pytest.mark.parametrize("size", [96, 100, 192, 200, 3, 0, 64.0, True])
def test_input_sizes_that_do_not(size):
    with pytest.raises(ArchitectureError, match="input_size"):
        check_input_size(size)


def test_errors_name_the_place():
    arch = spinenet49()
    with pytest.raises(ArchitectureError, match="filter_size_scale 0.001 leaves level 2 with 0 channels"):
        model_cost(arch.with_scaling(Scaling(0.001, 0.5, 8, 1)), input_size=64)
    with pytest.raises(ArchitectureError, match="block 2: parent 0: resample_alpha 0.01 reduces 64 channels to 0"):
        model_cost(arch.with_scaling(Scaling(0.25, 0.01, 8, 1)), input_size=64)
    with pytest.raises(ArchitectureError, match="stem 1: level 4 cannot follow level 2"):
        model_cost(Architecture(arch.blocks, stem=(StemBlock(2), StemBlock(4))), input_size=64)
    with pytest.raises(ArchitectureError, match="outputs: need exactly one output block at each of levels"):
        model_cost(arch, input_size=64, min_level=2)
    with pytest.raises(ArchitectureError, match="num_classes must be an integer >= 1, got 0"):
        model_cost(arch, input_size=64, num_classes=0)
    with pytest.raises(ArchitectureError, match="head_num_filters"):
        model_cost(arch, input_size=64, num_classes=3, head_num_filters=None)
    with pytest.raises(ArchitectureError, match="block 3: parent 9 is not built yet"):
        blocks = list(arch.blocks)
        blocks[1] = BlockSpec(4, R, (0, 9))
        check_buildable(Architecture(tuple(blocks)), input_size=64)


def test_stem_candidates_may_step_up_one_level():
    arch = spinenet49(Scaling(0.0625, 0.25, 8, 1))
    flat = model_cost(arch, input_size=64)
    stepped = model_cost(
        Architecture(arch.blocks, stem=(StemBlock(2), StemBlock(3, RESIDUAL)), scaling=arch.scaling), input_size=64
    )
    assert stepped.blocks[1].level == 3 and stepped.blocks[1].size == 8 and stepped.blocks[1].channels == 8
    assert stepped.backbone_params != flat.backbone_params


def test_resnet_like_and_random_architectures_cost_less_at_proxy_scaling():
    proxy = MODEL_PRESETS["proxy"]
    full = model_cost(resnet_like(), input_size=512, num_classes=90)
    small = model_cost(resnet_like(proxy.scaling), input_size=512, num_classes=90, head_num_filters=64)
    assert small.params < full.params / 5 and small.multiply_adds < full.multiply_adds / 5
    encoding = DecisionEncoding(tiny_space())
    rng = random.Random(1)
    for _ in range(20):
        arch = sample_architecture(encoding, rng)
        cost = model_cost(arch, input_size=128, num_classes=3, head_num_filters=8)
        assert cost.multiply_adds == cost.flops // 2
        assert cost.conv_multiply_adds <= cost.multiply_adds

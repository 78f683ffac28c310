"""The Keras SpineNet backbone: shapes, exact agreement with the cost model, config round trip."""

import json
import random

import keras
import numpy as np
import pytest

from proxy_trainer.detector.config import LayerSpec
from proxy_trainer.detector.retinanet import build_spinenet_backbone
from proxy_trainer.detector.spinenet import FusedBatchNormalization, SpineNet
from search_space import (
    BOTTLENECK,
    RESIDUAL,
    Architecture,
    ArchitectureError,
    BlockSpec,
    DecisionEncoding,
    Scaling,
    SearchSpace,
    StemBlock,
    sample_architecture,
    spinenet49,
)
from search_space.cost_model import model_cost
from tests.proxy_trainer.graph_cost import graph_flops

B, R = BOTTLENECK, RESIDUAL
TINY = Scaling(filter_size_scale=0.0625, resample_alpha=0.25, endpoints_num_filters=8, block_repeats=1)


def random_architectures(count=25, seed=2024):
    """Random members of three spaces with tiny scalings, at 64 or 128 px.

    One in five comes from the SpineNet-49 space; the others from smaller
    spaces (fewer blocks build faster) with every feature: level shifts, both
    block types, unrestricted or narrow parent windows, repeated blocks.
    """
    spaces = [
        SearchSpace(scaling=TINY),  # the SpineNet-49 space, window 5
        SearchSpace(level_allocation=((2, 1), (4, 1)), parent_window=None, scaling=TINY),
        SearchSpace(level_allocation=((3, 1), (5, 1)), parent_window=3, scaling=Scaling(0.125, 1.0, 16, 2)),
        SearchSpace(level_allocation=((2, 1), (4, 1)), parent_window=None, scaling=TINY),
        SearchSpace(level_allocation=((4, 2),), parent_window=2, scaling=TINY),
    ]
    rng = random.Random(seed)
    return [
        (sample_architecture(DecisionEncoding(spaces[i % len(spaces)]), rng), 64 if i % 2 else 128)
        for i in range(count)
    ]


def assert_matches_cost_model(model, arch, input_size):
    cost = model_cost(arch, input_size=input_size)
    assert model.count_params() == cost.backbone_params
    assert graph_flops(model) == cost.backbone_flops
    shapes = {k: tuple(v.shape[1:]) for k, v in model.output.items()}
    assert shapes == {str(lv): (h, w, c) for lv, h, w, c in cost.endpoint_shapes}


@pytest.mark.parametrize("arch, input_size", random_architectures())
def test_random_architectures_match_the_cost_model(arch, input_size):
    model = build_spinenet_backbone(arch, input_size=input_size)
    assert_matches_cost_model(model, arch, input_size)


def test_dead_blocks_and_reference_merges_are_built_as_costed():
    # Block 3 reaches no output (dead); P4 (block 5) sums block 2, consumed only later by block 6.
    blocks = (
        BlockSpec(4, B, (0, 1)),
        BlockSpec(2, R, (0, 1)),
        BlockSpec(5, B, (0, 1)),
        BlockSpec(4, B, (0, 4), True),
        BlockSpec(3, B, (2, 5), True),
        BlockSpec(5, B, (4, 5), True),
        BlockSpec(6, B, (6, 7), True),
        BlockSpec(7, R, (7, 8), True),
    )
    arch = Architecture(blocks, stem=(StemBlock(2), StemBlock(3, RESIDUAL)), scaling=TINY)
    cost = model_cost(arch, input_size=64)
    assert [b.index for b in cost.blocks if not b.live] == [3]
    assert {b.index: b.merged for b in cost.blocks if b.merged} == {5: (2,)}
    model = SpineNet(arch, 64)
    assert not any(layer.name.startswith("block3_") for layer in model.layers)
    assert "block5_sum" in [layer.name for layer in model.layers]
    assert len(model.get_layer("block5_sum").input) == 3
    assert_matches_cost_model(model, arch, 64)


def test_spinenet49_backbone_at_640_is_the_reference_size():
    model = SpineNet(spinenet49(), 640)
    # tf-models-official 2.20.0 SpineNet-49 at 640: count_params() 21,920,192.
    assert model.count_params() == 21_920_192
    assert {k: tuple(v.shape[1:]) for k, v in model.output.items()} == {
        "3": (80, 80, 256),
        "4": (40, 40, 256),
        "5": (20, 20, 256),
        "6": (10, 10, 256),
        "7": (5, 5, 256),
    }


def non_default_architecture():
    blocks = (
        BlockSpec(3, R, (0, 1)),
        BlockSpec(5, B, (1, 2)),
        BlockSpec(4, R, (2, 3)),
        BlockSpec(7, B, (0, 4), True),
        BlockSpec(3, B, (2, 5), True),
        BlockSpec(6, R, (3, 6), True),
        BlockSpec(4, B, (4, 7), True),
        BlockSpec(5, R, (6, 8), True),
    )
    return Architecture(blocks, stem=(StemBlock(2, RESIDUAL), StemBlock(2)), scaling=Scaling(0.125, 0.5, 16, 2))


def test_get_config_round_trip_rebuilds_the_same_graph():
    arch = non_default_architecture()
    model = SpineNet(arch, 128, LayerSpec(activation="swish", bn_momentum=0.9, bn_epsilon=1e-4), name="custom")
    config = model.get_config()
    json.dumps(config)  # plain JSON: it can live in a saved model or a config file
    rebuilt = SpineNet.from_config(config)
    assert rebuilt.architecture == arch
    assert rebuilt.name == "custom"
    assert rebuilt.count_params() == model.count_params()
    assert [(lyr.name, type(lyr).__name__) for lyr in rebuilt.layers] == [
        (lyr.name, type(lyr).__name__) for lyr in model.layers
    ]
    assert rebuilt.get_layer("block2_sum_act").activation is keras.activations.swish
    assert rebuilt.get_layer("stem_bn").momentum == 0.9
    # Through Keras' own serialization too (registered class).
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(again, SpineNet) and again.architecture == arch


def test_forward_pass_and_batch_norm_updates():
    model = SpineNet(spinenet49(TINY), 64)
    images = np.random.RandomState(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
    bn = model.get_layer("block2_r0_3x3_bn")
    before = bn.moving_mean.numpy().copy()
    out = model(images, training=False)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    out = model(images, training=True)
    assert not np.array_equal(bn.moving_mean.numpy(), before)
    for level in "34567":
        assert np.all(np.isfinite(out[level].numpy()))
        assert np.all(out[level].numpy() >= 0)  # ends in ReLU


def test_fused_batch_norm_matches_keras_batch_norm():
    x = np.random.RandomState(1).normal(2.0, 3.0, size=(4, 5, 5, 6)).astype(np.float32)
    ours, theirs = FusedBatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), atol=1e-5)
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-5)
    n = x.size // x.shape[-1]
    # The moving variance takes the unbiased batch variance, as tf-keras' fused kernel does.
    expected = 0.9 * 1.0 + 0.1 * x.reshape(-1, 6).var(axis=0, ddof=1)
    np.testing.assert_allclose(ours.moving_variance.numpy(), expected, rtol=1e-4)
    assert n > 1
    ours.moving_variance.assign(theirs.moving_variance.numpy())
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), atol=1e-5)
    ours.trainable = False  # a frozen batch norm runs in inference mode, as Keras' does
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=False), atol=1e-5)


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(ValueError, match="model.activation: 'gelu'; allowed relu, swish"):
        SpineNet(spinenet49(TINY), 64, {"activation": "gelu"})
    with pytest.raises(ArchitectureError, match="input_size 96"):
        SpineNet(spinenet49(TINY), 96)
    with pytest.raises(ArchitectureError, match="filter_size_scale"):
        SpineNet(spinenet49(Scaling(0.001, 0.5, 8, 1)), 64)

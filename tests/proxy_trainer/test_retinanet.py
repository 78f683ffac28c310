"""RetinaNet on SpineNet: the output contract, the head, the cost model, the config factory."""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.detector.config import LayerSpec, ModelConfig
from proxy_trainer.detector.retinanet import RetinaNet, build_model, build_retinanet
from search_space import MODEL_PRESETS, ArchitectureError, Scaling, resnet_like, spinenet49
from search_space.cost_model import model_cost
from tests.proxy_trainer.graph_cost import graph_flops
from tests.proxy_trainer.test_spinenet import TINY, non_default_architecture, random_architectures


def small_model(arch=None, input_size=64, num_classes=3, **kwargs):
    kwargs.setdefault("head_num_convs", 2)
    kwargs.setdefault("head_num_filters", 8)
    return build_retinanet(arch or spinenet49(TINY), input_size=input_size, num_classes=num_classes, **kwargs)


def assert_matches_cost_model(model, arch, input_size, num_classes, convs, filters, num_anchors=9):
    cost = model_cost(
        arch,
        input_size=input_size,
        num_classes=num_classes,
        head_num_convs=convs,
        head_num_filters=filters,
        num_anchors=num_anchors,
    )
    assert model.count_params() == cost.params
    assert model.backbone.count_params() == cost.backbone_params
    assert graph_flops(model) == cost.flops
    assert graph_flops(model.backbone) == cost.backbone_flops


def test_output_contract():
    model = small_model(num_classes=5)
    images = np.random.RandomState(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
    out = model(images, training=False)
    assert set(out) == {"cls_outputs", "box_outputs"}
    sides = {"3": 8, "4": 4, "5": 2, "6": 1, "7": 1}  # ceil(64 / 2**level)
    for key, depth in (("cls_outputs", 9 * 5), ("box_outputs", 9 * 4)):
        assert list(out[key]) == ["3", "4", "5", "6", "7"]
        for level, side in sides.items():
            assert tuple(out[key][level].shape) == (2, side, side, depth)
            assert out[key][level].dtype == tf.float32
            assert np.all(np.isfinite(out[key][level].numpy()))


def test_outputs_are_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = small_model()
        out = model(tf.zeros((1, 64, 64, 3)), training=True)
        assert model.get_layer("spinenet").get_layer("stem_conv").compute_dtype == "bfloat16"
        for key in ("cls_outputs", "box_outputs"):
            assert all(t.dtype == tf.float32 for t in out[key].values())
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_head_shares_convs_across_levels_and_starts_at_the_prior():
    model = small_model(num_classes=4, head_num_convs=3, head_num_filters=8, num_anchors=6)
    head = model.head
    convs = [lyr for lyr in head.layers if isinstance(lyr, keras.layers.Conv2D)]
    norms = [lyr for lyr in head.layers if isinstance(lyr, keras.layers.BatchNormalization)]
    assert len(convs) == 2 * (3 + 1)  # class and box subnets, shared by the 5 levels
    assert len(norms) == 2 * 3 * 5  # one batch norm per conv and level
    assert head.get_layer("cls_logits").filters == 6 * 4
    assert head.get_layer("box_deltas").filters == 6 * 4
    np.testing.assert_allclose(head.get_layer("cls_logits").bias.numpy(), -math.log(99), rtol=1e-6)
    np.testing.assert_array_equal(head.get_layer("box_deltas").bias.numpy(), 0)
    out = model(np.random.RandomState(1).uniform(size=(1, 64, 64, 3)).astype(np.float32), training=False)
    probs = tf.sigmoid(out["cls_outputs"]["3"]).numpy()
    assert abs(probs.mean() - 0.01) < 0.005  # focal-loss prior: every anchor starts near 0.01


def test_every_weight_gets_a_gradient():
    model = small_model(arch=non_default_architecture(), input_size=128)
    with tf.GradientTape() as tape:
        out = model(tf.random.uniform((2, 128, 128, 3), seed=1), training=True)
        loss = tf.add_n([tf.reduce_mean(tf.square(t)) for d in out.values() for t in d.values()])
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not missing
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


# 143 (60M backbone weights) and 190 (127M) are left out: initialising their weights takes tens of
# seconds on a 2-core machine. Their scaling features (alpha 1.0, repeated blocks) are covered by the
# random architectures, and their figures by tests/search_space/test_cost_model.py.
@pytest.mark.parametrize(
    "model_id, topology",
    [("proxy", spinenet49), ("49S", spinenet49), ("49", spinenet49), ("96", spinenet49), ("proxy", resnet_like)],
)
def test_presets_match_the_cost_model(model_id, topology):
    # Parameters do not depend on the input size; 64 px keeps the float-op count cheap to check.
    preset = MODEL_PRESETS[model_id]
    arch = topology(preset.scaling)
    model = build_retinanet(
        arch,
        input_size=64,
        num_classes=90,
        head_num_convs=preset.head_num_convs,
        head_num_filters=preset.head_num_filters,
    )
    assert_matches_cost_model(model, arch, 64, 90, preset.head_num_convs, preset.head_num_filters)
    del model
    keras.backend.clear_session()  # the big presets hold hundreds of MB of weights


def test_spinenet49_at_640_is_the_reference_model():
    model = build_retinanet(spinenet49(), input_size=640, num_classes=90)
    # tf-models-official 2.20.0, SpineNet-49 + RetinaNetHead(4 x 256), 90 classes: 28,631,822 weights.
    assert model.count_params() == 28_631_822
    assert_matches_cost_model(model, spinenet49(), 640, 90, 4, 256)
    # 85.4B multiply-adds published (docs/search_space.md#parameters-and-multiply-adds): within 1%.
    assert abs(graph_flops(model) // 2 / 85.4e9 - 1) < 0.01


@pytest.mark.parametrize("arch, input_size", random_architectures(count=25, seed=7))
def test_random_retinanets_match_the_cost_model(arch, input_size):
    model = small_model(arch, input_size=input_size, num_classes=2, head_num_convs=1, head_num_filters=4)
    assert_matches_cost_model(model, arch, input_size, 2, 1, 4)


def test_get_config_round_trip():
    arch = non_default_architecture()
    model = small_model(arch, input_size=128, num_classes=7, spec=LayerSpec(activation="swish"), num_anchors=4)
    rebuilt = RetinaNet.from_config(model.get_config())
    assert rebuilt.architecture == arch
    assert rebuilt.count_params() == model.count_params()
    assert [lyr.name for lyr in rebuilt.backbone.layers] == [lyr.name for lyr in model.backbone.layers]
    assert rebuilt.head.get_config() == model.head.get_config()
    assert tuple(rebuilt.output["cls_outputs"]["3"].shape) == (None, 16, 16, 4 * 7)


def test_build_model_reads_the_config():
    arch = spinenet49()  # carries the SpineNet-49 scaling; the model id replaces it
    config = ModelConfig(model_id="proxy", input_size=64, num_classes=3, num_scales=2, aspect_ratios=(1.0,))
    model = build_model(config, arch)
    assert model.architecture.scaling == MODEL_PRESETS["proxy"].scaling
    assert config.head_size() == (4, 64)
    assert tuple(model.output["box_outputs"]["3"].shape) == (None, 8, 8, 2 * 4)
    cost = config.cost(arch)
    assert model.count_params() == cost.params and graph_flops(model) == cost.flops
    # No model id: the architecture's own scaling, and the 4 x 256 reference head unless set.
    config = ModelConfig(model_id=None, input_size=64, num_classes=3, head_num_filters=16)
    model = build_model(config, spinenet49(TINY))
    assert model.architecture.scaling == TINY
    assert config.head_size() == (4, 16)
    assert model.head.get_layer("cls_conv3").filters == 16


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model_id", "50", "model.model_id: '50'; allowed null or one of 49S, 49, 96, 143, 190, proxy"),
        ("input_size", 96, "model.input_size: input_size 96: level 6"),
        ("num_classes", 0, "model.num_classes: 0; allowed an integer >= 1"),
        ("head_num_convs", -1, "model.head_num_convs"),
        ("aspect_ratios", (), "model.aspect_ratios"),
        ("activation", "tanh", "model.activation: 'tanh'; allowed relu, swish"),
        ("max_level", 8, "model.min_level"),
        ("bn_momentum", 1.0, "model.bn_momentum"),
    ],
)
def test_model_config_validation_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig(**{field: value}).validate()


def test_an_architecture_that_does_not_fit_the_config_is_one_error():
    with pytest.raises(ArchitectureError, match="filter_size_scale"):
        build_model(ModelConfig(model_id=None, input_size=64), spinenet49(Scaling(0.001, 0.5, 8, 1)))


def test_model_config_imports_no_tensorflow():
    # Experiment configs embed a ModelConfig; reading and costing them must not load TensorFlow.
    code = (
        "import sys\n"
        "from proxy_trainer.detector.config import LayerSpec, ModelConfig\n"
        "from search_space import spinenet49\n"
        "config = ModelConfig()\n"
        "config.validate()\n"
        "assert config.cost(spinenet49()).params > 0\n"
        "sys.exit(3 if 'tensorflow' in sys.modules else 0)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0

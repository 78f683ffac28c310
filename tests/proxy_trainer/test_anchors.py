"""Anchors: geometry of the reference RetinaNet, layout, per-level packing."""

import math

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.detector.anchors import Anchors


def test_count_and_level_shapes_at_128():
    anchors = Anchors(128)
    assert anchors.num_anchors_per_location == 9
    assert [anchors.feature_shape(lv) for lv in anchors.levels] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert anchors.num_anchors == (256 + 64 + 16 + 4 + 1) * 9
    assert anchors.boxes.shape == (anchors.num_anchors, 4) and anchors.boxes.dtype == np.float32


def test_64px_input_keeps_one_cell_at_level_7():
    anchors = Anchors(64)
    assert anchors.feature_shape(6) == (1, 1) and anchors.feature_shape(7) == (1, 1)


def test_reference_geometry_of_the_first_anchors():
    anchors = Anchors(128)
    # Level 3, cell (0, 0): centre (4, 4); scale 0 side 3 * 8 = 24.
    side = 24.0
    for a, ratio in enumerate((0.5, 1.0, 2.0)):
        h, w = side / math.sqrt(ratio), side * math.sqrt(ratio)
        np.testing.assert_allclose(anchors.boxes[a], [4 - h / 2, 4 - w / 2, 4 + h / 2, 4 + w / 2], rtol=1e-6)
    # Anchor 3 is scale index 1 (side 24 * 2 ** (1/3)), ratio 0.5.
    side1 = 24.0 * 2 ** (1 / 3)
    h, w = side1 / math.sqrt(0.5), side1 * math.sqrt(0.5)
    np.testing.assert_allclose(anchors.boxes[3], [4 - h / 2, 4 - w / 2, 4 + h / 2, 4 + w / 2], rtol=1e-6)
    # The next location along x: centre (4, 12), same shapes.
    np.testing.assert_allclose(anchors.boxes[9] - anchors.boxes[0], [0, 8, 0, 8], atol=1e-5)
    # The first anchor of level 4 follows all level-3 anchors: centre (8, 8), side 48.
    first4 = 16 * 16 * 9
    np.testing.assert_allclose(anchors.boxes[first4 + 1], [8 - 24, 8 - 24, 8 + 24, 8 + 24], rtol=1e-6)


def test_head_layout_flatten_matches_boxes_and_unpack_inverts_it():
    anchors = Anchors(96, anchor_size=4.0)
    per_level = {k: tf.constant(v)[None] for k, v in anchors.multilevel_boxes.items()}
    flat = anchors.flatten(per_level, 4)
    np.testing.assert_array_equal(flat[0].numpy(), anchors.boxes)
    unpacked = anchors.unpack(tf.constant(anchors.boxes))
    for key, value in anchors.multilevel_boxes.items():
        np.testing.assert_array_equal(unpacked[key].numpy(), value)
    scalar = anchors.unpack(tf.range(anchors.num_anchors))
    assert scalar["3"].shape == (12, 12, 9)


def test_flatten_rejects_a_level_of_the_wrong_size():
    anchors = Anchors(64)
    outputs = {str(lv): tf.zeros([1, 3, 3, 36]) for lv in anchors.levels}
    with pytest.raises(ValueError, match="level 3 output is 3x3, anchors expect 8x8"):
        anchors.flatten(outputs, 4)
    with pytest.raises(ValueError, match="level '3' is missing"):
        anchors.flatten({}, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": 64, "min_level": 5, "max_level": 4}, "levels"),
        ({"image_size": 64, "num_scales": 0}, "num_scales"),
        ({"image_size": 64, "aspect_ratios": ()}, "aspect_ratios"),
        ({"image_size": 64, "anchor_size": -1.0}, "anchor_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Anchors(**kwargs)

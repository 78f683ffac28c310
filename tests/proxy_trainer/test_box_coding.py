"""Box coding: known codes and an exact round trip."""

import math

import numpy as np
import tensorflow as tf

from proxy_trainer.detector.box_coding import BBOX_XFORM_CLIP, decode_boxes, encode_boxes


def test_known_codes():
    anchor = tf.constant([[10.0, 20.0, 30.0, 60.0]])  # centre (20, 40), size (20, 40)
    same = encode_boxes(anchor, anchor)
    np.testing.assert_allclose(same.numpy(), [[0, 0, 0, 0]], atol=1e-7)
    shifted = encode_boxes(tf.constant([[20.0, 20.0, 40.0, 60.0]]), anchor)  # moved down by half the height
    np.testing.assert_allclose(shifted.numpy(), [[0.5, 0, 0, 0]], atol=1e-6)
    doubled = encode_boxes(tf.constant([[0.0, 0.0, 40.0, 80.0]]), anchor)  # same centre, twice the size
    np.testing.assert_allclose(doubled.numpy(), [[0, 0, math.log(2), math.log(2)]], atol=1e-6)
    scaled = encode_boxes(tf.constant([[20.0, 20.0, 40.0, 60.0]]), anchor, scale_factors=(10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(scaled.numpy(), [[5.0, 0, 0, 0]], atol=1e-5)


def test_round_trip_random_boxes():
    rng = np.random.default_rng(0)
    anchors = rng.uniform(0, 400, size=(1000, 2))
    anchors = np.concatenate([anchors, anchors + rng.uniform(16, 200, size=(1000, 2))], axis=1)
    boxes = rng.uniform(0, 400, size=(1000, 2))
    boxes = np.concatenate([boxes, boxes + rng.uniform(2, 300, size=(1000, 2))], axis=1)
    # Size ratios up to 300 / 16, inside the decode clip exp(log(1000 / 16)).
    for factors in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        codes = encode_boxes(tf.constant(boxes, tf.float32), tf.constant(anchors, tf.float32), factors)
        back = decode_boxes(codes, tf.constant(anchors, tf.float32), factors)
        np.testing.assert_allclose(back.numpy(), boxes, rtol=1e-5, atol=1e-3)


def test_decode_clips_huge_size_codes():
    anchor = tf.constant([[0.0, 0.0, 16.0, 16.0]])
    boxes = decode_boxes(tf.constant([[0.0, 0.0, 50.0, 50.0]]), anchor).numpy()
    assert np.all(np.isfinite(boxes))
    np.testing.assert_allclose(boxes[0, 2] - boxes[0, 0], 16.0 * math.exp(BBOX_XFORM_CLIP), rtol=1e-5)


def test_degenerate_box_encodes_finite():
    codes = encode_boxes(tf.constant([[5.0, 5.0, 5.0, 9.0]]), tf.constant([[0.0, 0.0, 16.0, 16.0]]))
    assert np.all(np.isfinite(codes.numpy()))

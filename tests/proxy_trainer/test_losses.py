"""Losses against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.detector.anchor_labeler import AnchorLabeler
from proxy_trainer.detector.anchors import Anchors
from proxy_trainer.detector.losses import focal_loss, huber_loss, retinanet_loss, weight_decay_loss


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_focal_loss_hand_computed():
    # logit 0, positive: p_t = 0.5, CE = ln 2, (1 - p_t)^1.5 = 0.5^1.5, alpha_t = 0.25.
    pos = 0.25 * 0.5**1.5 * math.log(2.0)
    # logit 2, negative: p_t = 1 - sigmoid(2), CE = ln(1 + e^2), alpha_t = 0.75.
    neg = 0.75 * _sigmoid(2.0) ** 1.5 * math.log(1.0 + math.exp(2.0))
    # logit -3, positive: CE = ln(1 + e^3).
    pos2 = 0.25 * (1.0 - _sigmoid(-3.0)) ** 1.5 * math.log(1.0 + math.exp(3.0))
    got = focal_loss(tf.constant([0.0, 2.0, -3.0]), tf.constant([1.0, 0.0, 1.0])).numpy()
    np.testing.assert_allclose(got, [pos, neg, pos2], rtol=1e-5)
    assert pos == pytest.approx(0.0612661, rel=1e-5)
    # gamma 0 and alpha 0.5 give half the plain cross-entropy.
    ce = focal_loss(tf.constant([1.0]), tf.constant([1.0]), alpha=0.5, gamma=0.0).numpy()
    np.testing.assert_allclose(ce, [0.5 * math.log(1.0 + math.exp(-1.0))], rtol=1e-6)


def test_focal_loss_gradient_is_finite_at_confident_logits():
    logits = tf.Variable([30.0, -30.0, 0.0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(focal_loss(logits, tf.constant([1.0, 0.0, 1.0])))
    assert np.all(np.isfinite(tape.gradient(loss, logits).numpy()))


def test_huber_hand_computed():
    got = huber_loss(tf.constant([0.05, -0.3, 1.0]), tf.constant([0.0, 0.0, 1.0]), delta=0.1).numpy()
    np.testing.assert_allclose(got, [0.5 * 0.05**2, 0.1 * (0.3 - 0.05), 0.0], rtol=1e-5, atol=1e-8)


def test_retinanet_loss_hand_computed_on_one_positive():
    # Anchors one stride wide do not overlap their neighbours: exactly one positive, no ignored ones.
    anchors = Anchors(64, min_level=3, max_level=4, num_scales=1, aspect_ratios=(1.0,), anchor_size=1.0)
    k = 2
    target = 5
    labeler = AnchorLabeler(anchors, k)
    labels = labeler.label(tf.constant([anchors.boxes[target]]), tf.constant([1]))
    n = anchors.num_anchors
    assert float(labels["num_positives"]) == 1.0 and float(tf.reduce_sum(labels["cls_weights"])) == n
    batch = {
        key: ({lv: v[None] for lv, v in value.items()} if isinstance(value, dict) else value[None])
        for key, value in labels.items()
    }
    # All logits 0, all box codes 0.2 (targets of the positive are 0).
    outputs = {
        "cls_outputs": {str(lv): tf.zeros([1, *anchors.feature_shape(lv), k]) for lv in anchors.levels},
        "box_outputs": {str(lv): tf.fill([1, *anchors.feature_shape(lv), 4], 0.2) for lv in anchors.levels},
    }
    losses = retinanet_loss(outputs, batch, anchors, k)
    fl_pos = 0.25 * 0.5**1.5 * math.log(2.0)
    fl_neg = 0.75 * 0.5**1.5 * math.log(2.0)
    normalizer = 1.0 + 1.0  # one positive + 1
    expected_cls = (fl_pos + (n * k - 1) * fl_neg) / normalizer
    expected_box = 0.1 * (0.2 - 0.05) / normalizer  # mean over 4 equal coords
    assert float(losses["cls_loss"]) == pytest.approx(expected_cls, rel=1e-5)
    assert float(losses["box_loss"]) == pytest.approx(expected_box, rel=1e-5)
    assert float(losses["model_loss"]) == pytest.approx(expected_cls + 50.0 * expected_box, rel=1e-5)


def test_weight_decay_hits_kernels_only():
    kernel = tf.Variable(tf.fill([3, 3, 2, 2], 2.0), name="kernel")
    bias = tf.Variable(tf.fill([2], 5.0), name="bias")
    gamma = tf.Variable(tf.fill([2], 5.0), name="gamma")
    got = weight_decay_loss([kernel, bias, gamma], 4e-5)
    assert float(got) == pytest.approx(0.5 * 4e-5 * 36 * 4.0, rel=1e-6)
    assert float(weight_decay_loss([kernel], 0.0)) == 0.0

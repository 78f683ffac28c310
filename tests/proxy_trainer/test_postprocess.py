"""Post-processing: decoding, per-class NMS keeps the right boxes, caps."""

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.detector.anchor_labeler import pairwise_iou
from proxy_trainer.detector.anchors import Anchors
from proxy_trainer.detector.postprocess import generate_detections

ANCHORS = Anchors(64)
K = 3


def _outputs(scores: dict[int, tuple[int, float]]):
    """Raw outputs whose decoded boxes are the anchors, with given (class, probability) per anchor."""
    logits = np.full([ANCHORS.num_anchors, K], -12.0, np.float32)
    for anchor, (cls, prob) in scores.items():
        logits[anchor, cls] = np.log(prob / (1.0 - prob))
    cls_out = ANCHORS.unpack(tf.constant(logits))
    box_out = ANCHORS.unpack(tf.zeros([ANCHORS.num_anchors, 4]))
    return {k: v[None] for k, v in cls_out.items()}, {k: v[None] for k, v in box_out.items()}


def _anchor(cell_y, cell_x, a):
    return (cell_y * 8 + cell_x) * 9 + a  # level 3 of a 64 px input: 8 x 8 cells


def test_nms_keeps_the_right_boxes():
    best = _anchor(3, 3, 4)  # square, scale 1
    overlap = _anchor(3, 3, 5)  # same centre, ratio 2: IoU > 0.5 with `best`
    far = _anchor(0, 6, 1)
    iou = pairwise_iou(tf.constant(ANCHORS.boxes[[best]]), tf.constant(ANCHORS.boxes[[overlap, far]])).numpy()[0]
    assert iou[0] > 0.5 and iou[1] < 0.1
    scores = {best: (0, 0.9), overlap: (0, 0.8), far: (0, 0.7), _anchor(6, 1, 1): (2, 0.6), _anchor(6, 6, 1): (1, 0.04)}
    cls_out, box_out = _outputs(scores)
    det = generate_detections(cls_out, box_out, ANCHORS, K)
    n = int(det["num_detections"][0])
    assert n == 3  # `overlap` suppressed, the 0.04 one below the score threshold
    np.testing.assert_allclose(det["scores"][0, :n].numpy(), [0.9, 0.7, 0.6], rtol=1e-4)
    np.testing.assert_array_equal(det["classes"][0, :n].numpy(), [0, 0, 2])
    np.testing.assert_allclose(det["boxes"][0, 0].numpy(), np.clip(ANCHORS.boxes[best], 0, 64), atol=1e-4)
    np.testing.assert_allclose(det["boxes"][0, 1].numpy(), np.clip(ANCHORS.boxes[far], 0, 64), atol=1e-4)


def test_nms_is_per_class():
    best, overlap = _anchor(3, 3, 4), _anchor(3, 3, 5)
    cls_out, box_out = _outputs({best: (0, 0.9), overlap: (1, 0.8)})
    det = generate_detections(cls_out, box_out, ANCHORS, K)
    assert int(det["num_detections"][0]) == 2
    np.testing.assert_array_equal(det["classes"][0, :2].numpy(), [0, 1])


def test_max_detections_and_pre_nms_top_k():
    # 16 high-scoring level-3 squares on every other cell (pairwise IoU <= 0.2).
    cells = [(y, x) for y in range(0, 8, 2) for x in range(0, 8, 2)]
    scores = {_anchor(y, x, 1): (0, 0.5 + i / 100) for i, (y, x) in enumerate(cells)}
    cls_out, box_out = _outputs(scores)
    det = generate_detections(cls_out, box_out, ANCHORS, K, max_detections=5)
    assert det["boxes"].shape == (1, 5, 4) and int(det["num_detections"][0]) == 5
    assert float(det["scores"][0, 0]) == pytest.approx(0.5 + (len(cells) - 1) / 100, rel=1e-4)
    det = generate_detections(cls_out, box_out, ANCHORS, K, pre_nms_top_k=3)
    assert int(det["num_detections"][0]) == 3


def test_pre_nms_top_k_is_per_class():
    # Class 0 holds the 4 best anchors; class 1's two are weaker. Per class, top-2 still keeps class 1.
    cells = [(0, 0), (0, 4), (4, 0), (4, 4)]
    scores = {_anchor(y, x, 1): (0, 0.9 - i / 100) for i, (y, x) in enumerate(cells)}
    scores.update({_anchor(2, 2, 1): (1, 0.3), _anchor(6, 6, 1): (1, 0.2)})
    cls_out, box_out = _outputs(scores)
    det = generate_detections(cls_out, box_out, ANCHORS, K, pre_nms_top_k=2)
    n = int(det["num_detections"][0])
    assert n == 4
    np.testing.assert_array_equal(det["classes"][0, :n].numpy(), [0, 0, 1, 1])
    np.testing.assert_allclose(det["scores"][0, :n].numpy(), [0.9, 0.89, 0.3, 0.2], rtol=1e-4)


def test_decoded_boxes_follow_the_codes():
    anchor = _anchor(3, 3, 4)
    codes = np.zeros([ANCHORS.num_anchors, 4], np.float32)
    codes[anchor] = [0.25, -0.25, 0.0, 0.0]  # moved a quarter of the anchor size down and left
    logits = np.full([ANCHORS.num_anchors, K], -12.0, np.float32)
    logits[anchor, 1] = 3.0
    cls_out = {k: v[None] for k, v in ANCHORS.unpack(tf.constant(logits)).items()}
    box_out = {k: v[None] for k, v in ANCHORS.unpack(tf.constant(codes)).items()}
    det = generate_detections(cls_out, box_out, ANCHORS, K)
    a = ANCHORS.boxes[anchor]
    h = a[2] - a[0]
    np.testing.assert_allclose(det["boxes"][0, 0].numpy(), a + np.array([h, -h, h, -h]) / 4, atol=1e-4)

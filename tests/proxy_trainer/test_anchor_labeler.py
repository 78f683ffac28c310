"""Anchor labelling: positives, negatives, the ignore band, force matching, tf.data use."""

import numpy as np
import pytest
import tensorflow as tf

from proxy_trainer.detector.anchor_labeler import AnchorLabeler, pairwise_iou
from proxy_trainer.detector.anchors import Anchors
from proxy_trainer.detector.box_coding import decode_boxes

ANCHORS = Anchors(64)
K = 3


def _flat(labels, key, depth):
    return ANCHORS.flatten({k: v[None] for k, v in labels[key].items()}, depth)[0].numpy()


def _label(boxes, classes, **kwargs):
    labeler = AnchorLabeler(ANCHORS, K, **kwargs)
    out = labeler.label(tf.constant(boxes, tf.float32), tf.constant(classes, tf.int32))
    cls = _flat(out, "cls_targets", 1)[:, 0]
    box = _flat(out, "box_targets", 4)
    return cls, box, out["cls_weights"].numpy(), out["box_weights"].numpy(), out


def test_pairwise_iou_known_values():
    a = tf.constant([[0.0, 0.0, 10.0, 10.0]])
    b = tf.constant([[0.0, 0.0, 10.0, 10.0], [0.0, 5.0, 10.0, 15.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(pairwise_iou(a, b).numpy(), [[1.0, 50 / 150, 0.0]], rtol=1e-6)


def test_box_equal_to_an_anchor_is_matched_with_zero_code():
    target = 4 * 9 + 4  # level 3, cell (0, 4), anchor 4 (scale 1, ratio 1)
    box = ANCHORS.boxes[target]
    cls, codes, cls_w, box_w, out = _label([box, [0, 0, 0, 0]], [2, -1])
    assert cls[target] == 2 and box_w[target] == 1.0 and cls_w[target] == 1.0
    np.testing.assert_allclose(codes[target], 0.0, atol=1e-6)
    iou = pairwise_iou(tf.constant(ANCHORS.boxes), tf.constant([box])).numpy()[:, 0]
    # Positive exactly where IoU >= 0.5, negative below 0.4, ignored in between.
    np.testing.assert_array_equal(box_w == 1.0, iou >= 0.5)
    np.testing.assert_array_equal(cls >= 0, iou >= 0.5)
    np.testing.assert_array_equal(cls_w == 0.0, (iou >= 0.4) & (iou < 0.5))
    assert np.any((iou >= 0.4) & (iou < 0.5))  # the band is exercised
    assert float(out["num_positives"]) == np.sum(iou >= 0.5)


def test_box_targets_decode_back_to_the_ground_truth():
    box = np.array([10.0, 12.0, 40.0, 30.0], np.float32)
    cls, codes, _, box_w, _ = _label([box], [1])
    pos = box_w == 1.0
    assert pos.sum() >= 1 and np.all(cls[pos] == 1)
    decoded = decode_boxes(tf.constant(codes[pos]), tf.constant(ANCHORS.boxes[pos])).numpy()
    np.testing.assert_allclose(decoded, np.tile(box, (pos.sum(), 1)), atol=1e-3)
    np.testing.assert_array_equal(codes[~pos], 0.0)


def test_force_match_gives_a_small_box_its_best_anchor():
    box = [30.0, 30.0, 33.0, 33.0]  # far smaller than the smallest anchor (24 px)
    iou = pairwise_iou(tf.constant(ANCHORS.boxes), tf.constant([box])).numpy()[:, 0]
    assert iou.max() < 0.4
    cls, _, cls_w, box_w, _ = _label([box], [0])
    assert box_w.sum() == 1.0 and box_w[np.argmax(iou)] == 1.0 and cls[np.argmax(iou)] == 0
    cls, _, cls_w, box_w, _ = _label([box], [0], force_match=False)
    assert box_w.sum() == 0.0 and np.all(cls == -1) and np.all(cls_w == 1.0)


def test_two_boxes_claiming_one_anchor_the_higher_iou_keeps_it():
    small, larger = [30.0, 30.0, 33.0, 33.0], [29.0, 29.0, 35.0, 35.0]  # both best match one 24 px anchor
    iou = pairwise_iou(tf.constant(ANCHORS.boxes), tf.constant([small, larger])).numpy()
    assert np.argmax(iou[:, 0]) == np.argmax(iou[:, 1]) and iou[:, 1].max() > iou[:, 0].max()
    anchor = np.argmax(iou[:, 1])
    for boxes, classes in (([small, larger], [0, 1]), ([larger, small], [1, 0])):
        cls, _, _, box_w, _ = _label(boxes, classes)
        assert cls[anchor] == 1 and box_w.sum() == 1.0


def test_empty_image_is_all_negative():
    cls, codes, cls_w, box_w, out = _label(np.zeros([0, 4], np.float32), np.zeros([0], np.int32))
    assert np.all(cls == -1) and np.all(cls_w == 1.0) and box_w.sum() == 0 and float(out["num_positives"]) == 0
    cls2, _, _, _, _ = _label([[0.0, 0.0, 0.0, 0.0]] * 3, [-1, -1, -1])
    np.testing.assert_array_equal(cls2, cls)


def test_label_fn_in_tf_data_respects_num_boxes():
    labeler = AnchorLabeler(ANCHORS, K)
    element = {
        "image": tf.zeros([64, 64, 3]),
        "boxes": tf.constant([ANCHORS.boxes[40], ANCHORS.boxes[500], [0, 0, 0, 0]], tf.float32),
        "classes": tf.constant([1, 2, -1]),
        "num_boxes": tf.constant(1),
    }
    ds = tf.data.Dataset.from_tensors(element).repeat(2).map(labeler).batch(2)
    batch = next(iter(ds))
    assert batch["cls_targets"]["3"].shape == (2, 8, 8, 9)
    assert batch["box_targets"]["7"].shape == (2, 1, 1, 36)
    assert batch["cls_weights"].shape == (2, ANCHORS.num_anchors)
    cls = ANCHORS.flatten(batch["cls_targets"], 1)[0, :, 0].numpy()
    assert cls[40] == 1 and cls[500] == -1  # the second box lies past num_boxes


def test_bad_thresholds_and_classes():
    with pytest.raises(ValueError, match="unmatched_threshold"):
        AnchorLabeler(ANCHORS, K, match_threshold=0.3, unmatched_threshold=0.4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="class index is >= num_classes"):
        _label([ANCHORS.boxes[0]], [K])


def _random_boxes(rng, n):
    y, x = np.sort(rng.uniform(0, 64, (2, n, 2)), axis=2)
    return np.stack([y[:, 0], x[:, 0], y[:, 1], x[:, 1]], axis=1)


def test_labelling_a_padded_batch_equals_labelling_each_image():
    """The device path (padded batch, static shapes, XLA) gives the host path's targets."""
    rng = np.random.default_rng(0)
    small = [30.0, 30.0, 33.0, 33.0]  # forced match
    images = [
        ([ANCHORS.boxes[40], small, [5.0, 6.0, 60.0, 50.0]], [1, 0, 2]),
        ([], []),  # no boxes
        ([small, [29.0, 29.0, 35.0, 35.0]], [0, 1]),  # two claims on one anchor
        (_random_boxes(rng, 6), [0, 1, 2, 0, 1, 2]),
    ]
    max_boxes = 8
    labeler = AnchorLabeler(ANCHORS, K)
    boxes = np.zeros([len(images), max_boxes, 4], np.float32)
    classes = -np.ones([len(images), max_boxes], np.int32)
    for i, (b, c) in enumerate(images):
        boxes[i, : len(b)], classes[i, : len(c)] = np.reshape(b, [-1, 4]), c
    eager = labeler.label_batch(tf.constant(boxes), tf.constant(classes))
    compiled = tf.function(labeler.label_batch, jit_compile=True)(tf.constant(boxes), tf.constant(classes))
    for i, (b, _) in enumerate(images):
        host = labeler.label(tf.constant(boxes[i]), tf.constant(classes[i]), num_boxes=len(b))
        flat = {
            "cls_targets": ANCHORS.flatten({k: v[None] for k, v in host["cls_targets"].items()}, 1)[0, :, 0],
            "box_targets": ANCHORS.flatten({k: v[None] for k, v in host["box_targets"].items()}, 4)[0],
        }
        for key in ("cls_targets", "box_targets", "cls_weights", "box_weights", "num_positives"):
            want = (flat.get(key, host[key])).numpy()
            np.testing.assert_allclose(eager[key][i].numpy(), want, atol=1e-5, err_msg=f"image {i} {key}")
            np.testing.assert_allclose(compiled[key][i].numpy(), want, atol=1e-4, err_msg=f"image {i} {key} (XLA)")
    assert float(eager["num_positives"][1]) == 0.0 and float(eager["num_positives"][0]) >= 3


def test_check_classes_is_the_device_paths_guard():
    labeler = AnchorLabeler(ANCHORS, K)
    element = {"boxes": tf.zeros([2, 4]), "classes": tf.constant([0, -1])}
    assert labeler.check_classes(element)["classes"].numpy().tolist() == [0, -1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="class index is >= num_classes"):
        labeler.check_classes({"boxes": tf.zeros([1, 4]), "classes": tf.constant([K])})

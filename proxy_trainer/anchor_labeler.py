"""RetinaNet anchor labelling: IoU matching of anchors to ground-truth boxes.

Rules (RetinaNet paper section 4; the reference labeller):
- an anchor whose best IoU with a ground-truth box is ``>= match_threshold``
  (0.5) is positive and takes that box and its class;
- an anchor whose best IoU is ``< unmatched_threshold`` (0.4) is negative
  (background: all class targets 0);
- anchors in between are ignored (weight 0 in both losses);
- with ``force_match`` (the reference's ``force_match_for_each_col=True``)
  every ground-truth box that overlaps any anchor also claims the anchor of
  highest IoU with it, which becomes positive whatever its IoU, so small or
  oddly shaped boxes are never left without a positive anchor. When two
  boxes claim the same anchor, the one with the higher IoU keeps it (the
  reference keeps the first listed; they differ only in that tie).

Pure TensorFlow ops, so :class:`AnchorLabeler` is used as the input
pipeline's ``label_fn`` (per element, after augmentation, before batching).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from proxy_trainer.anchors import Anchors
from proxy_trainer.box_coding import DEFAULT_SCALE_FACTORS, encode_boxes

# RetinaNet (Lin et al. 2017, section 4): positives at IoU >= 0.5, negatives
# below 0.4, the band in between ignored. (Model Garden's default uses 0.5 for
# both, i.e. no ignore band.)
DEFAULT_MATCH_THRESHOLD = 0.5
DEFAULT_UNMATCHED_THRESHOLD = 0.4

# Keys the labeller adds to an element.
TARGET_KEYS = ("cls_targets", "box_targets", "cls_weights", "box_weights", "num_positives")


def pairwise_iou(boxes_a: tf.Tensor, boxes_b: tf.Tensor) -> tf.Tensor:
    """IoU of every box in ``boxes_a`` [N, 4] with every box in ``boxes_b`` [M, 4] -> [N, M]."""
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    ymin = tf.maximum(a[..., 0], b[..., 0])
    xmin = tf.maximum(a[..., 1], b[..., 1])
    ymax = tf.minimum(a[..., 2], b[..., 2])
    xmax = tf.minimum(a[..., 3], b[..., 3])
    inter = tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return tf.where(union > 0.0, inter / tf.maximum(union, 1e-12), 0.0)


class AnchorLabeler:
    """Computes per-anchor class and box targets for one image.

    Args:
      anchors: the anchors of the training input size.
      num_classes: K, the number of sigmoid class outputs; ground-truth
        classes must be channel indices in ``[0, K)`` (-1 marks padding).
      match_threshold: IoU at or above which an anchor is positive.
      unmatched_threshold: IoU below which an anchor is negative.
      force_match: give every box its best anchor (see the module docstring).
      scale_factors: box-code scale factors (see ``box_coding``).

    Raises:
      ValueError: thresholds out of order or outside [0, 1].
    """

    def __init__(
        self,
        anchors: Anchors,
        num_classes: int,
        match_threshold: float = DEFAULT_MATCH_THRESHOLD,
        unmatched_threshold: float = DEFAULT_UNMATCHED_THRESHOLD,
        force_match: bool = True,
        scale_factors: tuple[float, float, float, float] = DEFAULT_SCALE_FACTORS,
    ):
        if not 0.0 <= unmatched_threshold <= match_threshold <= 1.0:
            raise ValueError(
                f"anchor labeler: need 0 <= unmatched_threshold ({unmatched_threshold}) "
                f"<= match_threshold ({match_threshold}) <= 1"
            )
        if num_classes < 1:
            raise ValueError(f"anchor labeler: num_classes is {num_classes}; must be >= 1")
        self.anchors = anchors
        self.num_classes = int(num_classes)
        self.match_threshold = float(match_threshold)
        self.unmatched_threshold = float(unmatched_threshold)
        self.force_match = bool(force_match)
        self.scale_factors = tuple(scale_factors)

    def label(self, boxes: tf.Tensor, classes: tf.Tensor, num_boxes: tf.Tensor | None = None) -> dict[str, Any]:
        """Labels all anchors against the ground truth of one image.

        Args:
          boxes: [M, 4] (ymin, xmin, ymax, xmax) in input pixels, padded.
          classes: [M] int class channel indices, -1 for padding.
          num_boxes: optional scalar; rows at or past it are padding.

        Returns:
          ``cls_targets``: level key -> [H, W, A] int32, the class index of a
            positive anchor, -1 otherwise (negative or ignored);
          ``box_targets``: level key -> [H, W, A * 4] float32 codes (zero for
            non-positive anchors);
          ``cls_weights``: [N] float32, 1 for positive and negative anchors, 0
            for ignored ones;
          ``box_weights``: [N] float32, 1 for positive anchors;
          ``num_positives``: float32 scalar.
        """
        boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
        classes = tf.reshape(tf.cast(classes, tf.int32), [-1])
        if num_boxes is not None:
            # Only the real boxes enter the [N, M] IoU matrix (M is often ~7 of a 100-row pad).
            n = tf.minimum(tf.cast(tf.reshape(num_boxes, []), tf.int32), tf.shape(classes)[0])
            boxes, classes = boxes[:n], classes[:n]
        tf.debugging.assert_less(
            classes,
            self.num_classes,
            message=f"anchor labeler: a ground-truth class index is >= num_classes ({self.num_classes})",
        )
        # A padding row makes argmax well defined for images without boxes.
        boxes = tf.concat([boxes, tf.zeros([1, 4], tf.float32)], axis=0)
        classes = tf.concat([classes, tf.constant([-1], tf.int32)], axis=0)
        valid = classes >= 0

        anchor_boxes = tf.constant(self.anchors.boxes)
        iou = tf.where(valid[None, :], pairwise_iou(anchor_boxes, boxes), -1.0)  # [N, M]
        best_iou = tf.reduce_max(iou, axis=1)
        best_gt = tf.argmax(iou, axis=1, output_type=tf.int32)
        positive = best_iou >= self.match_threshold
        negative = best_iou < self.unmatched_threshold
        if self.force_match:
            best_anchor = tf.argmax(iou, axis=0, output_type=tf.int32)  # [M]
            claims = tf.logical_and(valid, tf.reduce_max(iou, axis=0) > 0.0)
            anchor_ids = tf.range(tf.shape(iou)[0], dtype=tf.int32)
            forced = tf.logical_and(tf.equal(anchor_ids[:, None], best_anchor[None, :]), claims[None, :])
            is_forced = tf.reduce_any(forced, axis=1)
            forced_gt = tf.argmax(tf.where(forced, iou, -2.0), axis=1, output_type=tf.int32)
            best_gt = tf.where(is_forced, forced_gt, best_gt)
            positive = tf.logical_or(positive, is_forced)
            negative = tf.logical_and(negative, tf.logical_not(is_forced))

        matched_boxes = tf.where(positive[:, None], tf.gather(boxes, best_gt), anchor_boxes)
        box_targets = encode_boxes(matched_boxes, anchor_boxes, self.scale_factors)
        box_targets = tf.where(positive[:, None], box_targets, 0.0)
        cls_targets = tf.where(positive, tf.gather(classes, best_gt), -1)
        box_weights = tf.cast(positive, tf.float32)
        cls_weights = tf.cast(tf.logical_or(positive, negative), tf.float32)
        return {
            "cls_targets": self.anchors.unpack(cls_targets),
            "box_targets": self.anchors.unpack(box_targets),
            "cls_weights": cls_weights,
            "box_weights": box_weights,
            "num_positives": tf.reduce_sum(box_weights),
        }

    def __call__(self, element: Mapping[str, Any]) -> dict[str, Any]:
        """The input pipeline's ``label_fn``: the element plus the targets of :meth:`label`."""
        out = dict(element)
        out.update(self.label(element["boxes"], element["classes"], element.get("num_boxes")))
        return out

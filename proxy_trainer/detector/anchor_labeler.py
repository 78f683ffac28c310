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
  reference keeps the first listed; they differ only in that case).

Pure TensorFlow ops. Two places to run it: the host, as the
input pipeline's ``label_fn`` (:meth:`AnchorLabeler.label`, per element after
augmentation, on the real boxes only), or the accelerator, inside the
training step (:meth:`AnchorLabeler.label_batch` on the padded batch, static
shapes, so XLA compiles it), which takes the most expensive per-image work off
the input pipeline at 512 px.
Both give the same targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from proxy_trainer.detector.anchors import Anchors
from proxy_trainer.detector.box_coding import DEFAULT_SCALE_FACTORS, encode_boxes

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


def _force_matches(iou: tf.Tensor, valid: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The anchors that boxes claim as their best, and the box that keeps each.

    Every valid box overlapping some anchor claims its anchor of highest IoU;
    when several claim one anchor, the claim of highest IoU wins (ties: the
    lower box index). Static shapes throughout (XLA compiles it).

    Args:
      iou: [B, N, M] IoU of anchors with boxes (-1 for invalid boxes).
      valid: [B, M] real boxes.

    Returns:
      ``is_forced`` [B, N] bool and ``forced_gt`` [B, N] int32, the box that
      keeps each forced anchor (0 elsewhere).
    """
    best_anchor = tf.argmax(iou, axis=1, output_type=tf.int32)  # [B, M]
    claim_iou = tf.reduce_max(iou, axis=1)
    claims = tf.logical_and(valid, claim_iou > 0.0)
    m = tf.shape(iou)[2]
    index = tf.range(m)
    same = tf.equal(best_anchor[:, :, None], best_anchor[:, None, :])  # [B, M, M]
    higher = claim_iou[:, None, :] > claim_iou[:, :, None]
    tie_first = tf.logical_and(
        tf.equal(claim_iou[:, None, :], claim_iou[:, :, None]), (index[None, :] < index[:, None])[None]
    )
    beats = tf.logical_or(higher, tie_first)  # beats[b, j, k]: claim k beats claim j
    beaten = tf.reduce_any(tf.logical_and(tf.logical_and(same, beats), claims[:, None, :]), axis=2)
    winners = tf.logical_and(claims, tf.logical_not(beaten))  # [B, M]; at most one per anchor
    # Scatter box index + 1 of the winners (0 for the rest) onto their anchors: an anchor receives at
    # most one non-zero value, so the summing scatter is exact in any order.
    b = tf.shape(iou)[0]
    batch_index = tf.broadcast_to(tf.range(b)[:, None], tf.shape(best_anchor))
    indices = tf.stack([batch_index, best_anchor], axis=-1)  # [B, M, 2]
    claimed = tf.scatter_nd(indices, tf.where(winners, index[None, :] + 1, 0), tf.shape(iou)[:2])  # [B, N]
    return claimed > 0, tf.maximum(claimed - 1, 0)


class AnchorLabeler:
    """Computes per-anchor class and box targets, for one image or a padded batch.

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
        boxes = self.anchors.boxes
        self._anchor_columns = tuple(tf.constant(boxes[:, i : i + 1]) for i in range(4))  # [N, 1] each
        self._anchor_areas = tf.constant((boxes[:, 2:3] - boxes[:, 0:1]) * (boxes[:, 3:4] - boxes[:, 1:2]))

    def label(self, boxes: tf.Tensor, classes: tf.Tensor, num_boxes: tf.Tensor | None = None) -> dict[str, Any]:
        """Labels all anchors against the ground truth of one image (the host path).

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

        Raises:
          tf.errors.InvalidArgumentError: a class index >= ``num_classes``.
        """
        boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
        classes = tf.reshape(tf.cast(classes, tf.int32), [-1])
        if num_boxes is not None:
            # Only the real boxes enter the [N, M] IoU matrix (M is often ~7 of a 100-row pad).
            n = tf.minimum(tf.cast(tf.reshape(num_boxes, []), tf.int32), tf.shape(classes)[0])
            boxes, classes = boxes[:n], classes[:n]
        classes = self._checked(classes)
        # A padding row keeps the box axis non-empty for images without boxes.
        boxes = tf.concat([boxes, tf.zeros([1, 4], tf.float32)], axis=0)
        classes = tf.concat([classes, tf.constant([-1], tf.int32)], axis=0)
        best_gt, positive, negative = (t[0] for t in self._match(boxes[None], classes[None]))
        # Codes only for the (few) positive anchors, scattered into zeros: on a CPU core that is
        # cheaper than encoding every anchor as label_batch does.
        anchor_boxes = tf.constant(self.anchors.boxes)
        pos = tf.cast(tf.where(positive), tf.int32)  # [P, 1]
        pos_codes = encode_boxes(
            tf.gather(boxes, tf.gather_nd(best_gt, pos)), tf.gather_nd(anchor_boxes, pos), self.scale_factors
        )
        box_weights = tf.cast(positive, tf.float32)
        return {
            "cls_targets": self.anchors.unpack(tf.where(positive, tf.gather(classes, best_gt), -1)),
            "box_targets": self.anchors.unpack(tf.scatter_nd(pos, pos_codes, tf.shape(anchor_boxes))),
            "cls_weights": tf.cast(tf.logical_or(positive, negative), tf.float32),
            "box_weights": box_weights,
            "num_positives": tf.reduce_sum(box_weights),
        }

    def label_batch(self, boxes: tf.Tensor, classes: tf.Tensor) -> dict[str, tf.Tensor]:
        """Labels all anchors of a batch; static shapes, so it runs inside an XLA-compiled step.

        The device path: the training step labels its batch on the accelerator, where the [B, N, M]
        IoU of every anchor with every (padded) box costs little, instead of the host's input
        pipeline, where it is the most expensive per-image work at 512 px.

        Args:
          boxes: [B, M, 4] (ymin, xmin, ymax, xmax) in input pixels, M >= 1.
          classes: [B, M] class channel indices, -1 for padding rows.

        Returns:
          Flat targets in anchor layout order: ``cls_targets`` [B, N] int32 (-1 for non-positive
          anchors), ``box_targets`` [B, N, 4], ``cls_weights`` and ``box_weights`` [B, N] float32,
          ``num_positives`` [B] float32. Class indices are not range-checked here (see
          :meth:`check_classes`).
        """
        boxes = tf.cast(boxes, tf.float32)
        classes = tf.cast(classes, tf.int32)
        best_gt, positive, negative = self._match(boxes, classes)
        anchor_boxes = tf.constant(self.anchors.boxes)[None]  # [1, N, 4]
        matched = tf.gather(boxes, best_gt, batch_dims=1)  # [B, N, 4]
        # Non-positive anchors encode themselves (a finite zero code), then get zeros anyway.
        matched = tf.where(positive[..., None], matched, anchor_boxes)
        codes = encode_boxes(matched, anchor_boxes, self.scale_factors)
        box_weights = tf.cast(positive, tf.float32)
        return {
            "cls_targets": tf.where(positive, tf.gather(classes, best_gt, batch_dims=1), -1),
            "box_targets": codes * box_weights[..., None],
            "cls_weights": tf.cast(tf.logical_or(positive, negative), tf.float32),
            "box_weights": box_weights,
            "num_positives": tf.reduce_sum(box_weights, axis=1),
        }

    def _match(self, boxes: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """[B, M, 4] boxes, [B, M] classes -> the box of every anchor, positive, negative ([B, N] each)."""
        valid = classes >= 0  # [B, M]
        iou = tf.where(valid[:, None, :], self._iou_with_anchors(boxes), -1.0)  # [B, N, M]
        best_iou = tf.reduce_max(iou, axis=2)
        best_gt = tf.argmax(iou, axis=2, output_type=tf.int32)
        positive = best_iou >= self.match_threshold
        negative = best_iou < self.unmatched_threshold
        if self.force_match:
            is_forced, forced_gt = _force_matches(iou, valid)
            best_gt = tf.where(is_forced, forced_gt, best_gt)
            positive = tf.logical_or(positive, is_forced)
            negative = tf.logical_and(negative, tf.logical_not(is_forced))
        return best_gt, positive, negative

    def _iou_with_anchors(self, boxes: tf.Tensor) -> tf.Tensor:
        """[B, N, M] IoU of every anchor with ``boxes`` [B, M, 4] (anchor coordinates and areas precomputed)."""
        ymin, xmin, ymax, xmax = (c[None] for c in self._anchor_columns)  # [1, N, 1]
        b_ymin, b_xmin, b_ymax, b_xmax = (boxes[:, None, :, i] for i in range(4))  # [B, 1, M]
        inter_h = tf.maximum(tf.minimum(ymax, b_ymax) - tf.maximum(ymin, b_ymin), 0.0)
        inter_w = tf.maximum(tf.minimum(xmax, b_xmax) - tf.maximum(xmin, b_xmin), 0.0)
        inter = inter_h * inter_w
        union = self._anchor_areas[None] + (b_ymax - b_ymin) * (b_xmax - b_xmin) - inter
        return tf.where(union > 0.0, inter / tf.maximum(union, 1e-12), 0.0)

    def _checked(self, classes: tf.Tensor) -> tf.Tensor:
        check = tf.debugging.assert_less(
            classes,
            self.num_classes,
            message=f"anchor labeler: a ground-truth class index is >= num_classes ({self.num_classes})",
        )
        with tf.control_dependencies([check]):
            return tf.identity(classes)

    def __call__(self, element: Mapping[str, Any]) -> dict[str, Any]:
        """The input pipeline's ``label_fn``: the element plus the targets of :meth:`label`."""
        out = dict(element)
        out.update(self.label(element["boxes"], element["classes"], element.get("num_boxes")))
        return out

    def check_classes(self, element: Mapping[str, Any]) -> dict[str, Any]:
        """The input pipeline's ``label_fn`` when the training step labels: the element, with its
        class indices checked against ``num_classes`` (a clear error on the host, not a silent
        all-background one-hot on the device)."""
        out = dict(element)
        out["classes"] = self._checked(tf.cast(element["classes"], tf.int32))
        return out

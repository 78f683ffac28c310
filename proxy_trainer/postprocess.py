"""RetinaNet post-processing: raw head outputs -> at most 100 detections per image.

Steps (the reference detection generator, SPINENET.md section 7 and the
reference post-processing defaults):
1. sigmoid class scores of every anchor;
2. pre-NMS top-k: the ``pre_nms_top_k`` anchors of highest class score per
   image (over all levels) are kept, with all their class scores;
3. their box codes are decoded against their anchors and clipped to the
   input image;
4. per-class NMS with TensorFlow's ``tf.image.combined_non_max_suppression``
   (IoU threshold 0.5, score threshold 0.05), at most ``max_detections``
   (100) per image, sorted by score.

:func:`detections_to_coco` maps the detections from input pixels back to the
original image (dividing by the input pipeline's ``image_scale``) and into
COCO result records ``{"image_id", "category_id", "bbox": [x, y, w, h],
"score"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from proxy_trainer.anchors import Anchors
from proxy_trainer.box_coding import decode_boxes

# The reference post-processing defaults (tensorflow/tpu detection configs and
# Model Garden's detection generator).
SCORE_THRESHOLD = 0.05
NMS_IOU_THRESHOLD = 0.5
MAX_DETECTIONS = 100
PRE_NMS_TOP_K = 1000


def generate_detections(
    cls_outputs: Mapping[str, tf.Tensor],
    box_outputs: Mapping[str, tf.Tensor],
    anchors: Anchors,
    num_classes: int,
    score_threshold: float = SCORE_THRESHOLD,
    pre_nms_top_k: int = PRE_NMS_TOP_K,
    nms_iou_threshold: float = NMS_IOU_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> dict[str, tf.Tensor]:
    """Decodes and suppresses the raw outputs of a batch.

    Args:
      cls_outputs: level key -> [B, H, W, A * K] class logits.
      box_outputs: level key -> [B, H, W, A * 4] box codes.
      anchors: the anchors of the input size.
      num_classes: K.
      score_threshold: detections scoring below are dropped.
      pre_nms_top_k: anchors kept per image before NMS.
      nms_iou_threshold: IoU above which a lower-scoring box of the same class
        is suppressed.
      max_detections: detections kept per image.

    Returns:
      ``boxes`` [B, D, 4] (ymin, xmin, ymax, xmax) in input pixels, ``scores``
      [B, D], ``classes`` [B, D] int32 class indices, ``num_detections`` [B]
      int32; rows at or past ``num_detections`` are zero padding.
    """
    logits = anchors.flatten(cls_outputs, num_classes)
    codes = anchors.flatten(box_outputs, 4)
    scores = tf.sigmoid(tf.cast(logits, tf.float32))
    k = min(int(pre_nms_top_k), anchors.num_anchors)
    _, top = tf.math.top_k(tf.reduce_max(scores, axis=-1), k=k, sorted=False)  # [B, k]
    top_scores = tf.gather(scores, top, batch_dims=1)  # [B, k, K]
    top_codes = tf.gather(codes, top, batch_dims=1)
    top_anchors = tf.gather(tf.constant(anchors.boxes), top)  # [B, k, 4]
    boxes = decode_boxes(top_codes, top_anchors)
    height, width = (float(v) for v in anchors.image_size)
    boxes = tf.clip_by_value(boxes, 0.0, tf.constant([height, width, height, width], tf.float32))
    nms = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :],
        top_scores,
        max_output_size_per_class=max_detections,
        max_total_size=max_detections,
        iou_threshold=nms_iou_threshold,
        score_threshold=score_threshold,
        pad_per_class=False,
        clip_boxes=False,
    )
    return {
        "boxes": nms.nmsed_boxes,
        "scores": nms.nmsed_scores,
        "classes": tf.cast(nms.nmsed_classes, tf.int32),
        "num_detections": nms.valid_detections,
    }


def detections_to_coco(
    detections: Mapping[str, Any],
    image_ids: Sequence[int] | np.ndarray,
    image_scales: np.ndarray,
    original_sizes: np.ndarray | None = None,
    category_ids: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Detections of a batch in input pixels -> COCO result records in original pixels.

    Args:
      detections: NumPy (or tensor) outputs of :func:`generate_detections`.
      image_ids: [B] COCO image ids.
      image_scales: [B] or [B, 2] (y, x) factors with
        ``input_pixels = original_pixels * scale``.
      original_sizes: optional [B, 2] (height, width); boxes are clipped to it.
      category_ids: class index -> COCO category id; identity if None.

    Returns:
      One dict per kept detection: ``image_id``, ``category_id``,
      ``bbox`` ``[x, y, width, height]`` and ``score`` (Python scalars).
    """
    boxes = np.asarray(detections["boxes"], np.float64)
    scores = np.asarray(detections["scores"], np.float64)
    classes = np.asarray(detections["classes"], np.int64)
    counts = np.asarray(detections["num_detections"], np.int64)
    scales = np.asarray(image_scales, np.float64).reshape(len(boxes), -1)
    if scales.shape[1] == 1:
        scales = np.repeat(scales, 2, axis=1)
    records = []
    for i in range(len(boxes)):
        n = int(counts[i])
        b = boxes[i, :n] / np.array([scales[i, 0], scales[i, 1], scales[i, 0], scales[i, 1]])
        if original_sizes is not None:
            h, w = (float(v) for v in np.asarray(original_sizes)[i][:2])
            b = np.clip(b, 0.0, [h, w, h, w])
        for j in range(n):
            ymin, xmin, ymax, xmax = b[j]
            cls = int(classes[i, j])
            records.append(
                {
                    "image_id": int(np.asarray(image_ids)[i]),
                    "category_id": int(category_ids[cls]) if category_ids is not None else cls,
                    "bbox": [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)],
                    "score": float(scores[i, j]),
                }
            )
    return records

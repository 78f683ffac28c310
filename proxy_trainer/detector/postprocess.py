"""RetinaNet post-processing: raw head outputs -> at most 100 detections per image.

Steps (the reference detection generator and post-processing defaults,
docs/proxy_recipe.md#post-processing):
1. sigmoid class scores of every anchor;
2. pre-NMS top-k per class: for each class, the ``pre_nms_top_k`` (5,000)
   anchors of highest score for that class, over all levels, are its
   candidates (Model Garden's default detection generator does the same);
3. the candidates' box codes are decoded against their anchors and clipped
   to the input image;
4. per-class NMS with TensorFlow's ``tf.image.combined_non_max_suppression``
   (IoU threshold 0.5, score threshold 0.05), at most ``max_detections``
   (100) per image, sorted by score.

Detections stay in input pixels; ``coco_eval.CocoEvaluator.add_batch`` maps
them back to the original image (dividing by the pipeline's ``image_scale``
and clipping to the original size) for COCO evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from proxy_trainer.detector.anchors import Anchors
from proxy_trainer.detector.box_coding import decode_boxes

# The reference post-processing defaults (tensorflow/tpu detection configs and
# Model Garden's detection generator).
SCORE_THRESHOLD = 0.05
NMS_IOU_THRESHOLD = 0.5
MAX_DETECTIONS = 100
PRE_NMS_TOP_K = 5000


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
      pre_nms_top_k: candidates kept per class and image before NMS.
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
    # Candidate i of class c is the anchor with the i-th highest score for c.
    top_scores, top = tf.math.top_k(tf.transpose(scores, [0, 2, 1]), k=k, sorted=False)  # [B, K, k]
    top_scores, top = tf.transpose(top_scores, [0, 2, 1]), tf.transpose(top, [0, 2, 1])  # [B, k, K]
    top_codes = tf.gather(codes, top, batch_dims=1)  # [B, k, K, 4]
    top_anchors = tf.gather(tf.constant(anchors.boxes), top)  # [B, k, K, 4]
    boxes = decode_boxes(top_codes, top_anchors)
    height, width = (float(v) for v in anchors.image_size)
    boxes = tf.clip_by_value(boxes, 0.0, tf.constant([height, width, height, width], tf.float32))
    nms = tf.image.combined_non_max_suppression(
        boxes,
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

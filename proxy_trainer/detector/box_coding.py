"""Box regression targets: the Faster R-CNN / RetinaNet ``(ty, tx, th, tw)`` code.

For a box of centre ``(y, x)`` and size ``(h, w)`` against an anchor of
centre ``(ya, xa)`` and size ``(ha, wa)``::

    ty = (y - ya) / ha      tx = (x - xa) / wa
    th = log(h / ha)        tw = log(w / wa)

each multiplied by a scale factor. The reference RetinaNet uses no scale
factors (``FasterRcnnBoxCoder()`` with ``scale_factors=None``), i.e.
``(1, 1, 1, 1)``, which is the default here; the Huber delta 0.1 and box
loss weight 50 of the recipe are tuned for those unscaled codes.

Boxes are ``(ymin, xmin, ymax, xmax)`` in any consistent unit. Decoding
clips ``th`` and ``tw`` at ``log(1000 / 16)`` (the reference's
``BBOX_XFORM_CLIP``) so a wild prediction cannot overflow ``exp``; within
that range ``decode(encode(b, a), a) == b`` up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

# Reference box_ops: exp() of size codes is clipped at log(1000 / 16).
BBOX_XFORM_CLIP = math.log(1000.0 / 16.0)
# Reference FasterRcnnBoxCoder default: no scale factors.
DEFAULT_SCALE_FACTORS = (1.0, 1.0, 1.0, 1.0)
# Smallest box side used when encoding, so a degenerate box gives a finite code.
_MIN_SIZE = 1e-6


def _centre_size(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    h = ymax - ymin
    w = xmax - xmin
    return ymin + 0.5 * h, xmin + 0.5 * w, h, w


def encode_boxes(
    boxes: tf.Tensor, anchors: tf.Tensor, scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS
) -> tf.Tensor:
    """Boxes -> regression codes relative to anchors.

    Args:
      boxes: [..., 4] (ymin, xmin, ymax, xmax).
      anchors: [..., 4] broadcastable to ``boxes``.
      scale_factors: multipliers of (ty, tx, th, tw).

    Returns:
      [..., 4] float codes (ty, tx, th, tw).
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    y, x, h, w = _centre_size(boxes)
    ya, xa, ha, wa = _centre_size(anchors)
    h = tf.maximum(h, _MIN_SIZE)
    w = tf.maximum(w, _MIN_SIZE)
    ha = tf.maximum(ha, _MIN_SIZE)
    wa = tf.maximum(wa, _MIN_SIZE)
    sy, sx, sh, sw = scale_factors
    ty = (y - ya) / ha * sy
    tx = (x - xa) / wa * sx
    th = tf.math.log(h / ha) * sh
    tw = tf.math.log(w / wa) * sw
    return tf.stack([ty, tx, th, tw], axis=-1)


def decode_boxes(
    codes: tf.Tensor, anchors: tf.Tensor, scale_factors: Sequence[float] = DEFAULT_SCALE_FACTORS
) -> tf.Tensor:
    """Regression codes relative to anchors -> boxes (inverse of :func:`encode_boxes`).

    Args:
      codes: [..., 4] (ty, tx, th, tw).
      anchors: [..., 4] broadcastable to ``codes``.
      scale_factors: the multipliers used when encoding.

    Returns:
      [..., 4] float32 boxes (ymin, xmin, ymax, xmax).
    """
    codes = tf.cast(codes, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    ya, xa, ha, wa = _centre_size(anchors)
    ty, tx, th, tw = tf.unstack(codes, axis=-1)
    sy, sx, sh, sw = scale_factors
    ty, tx = ty / sy, tx / sx
    th = tf.minimum(th / sh, BBOX_XFORM_CLIP)
    tw = tf.minimum(tw / sw, BBOX_XFORM_CLIP)
    y = ty * ha + ya
    x = tx * wa + xa
    h = tf.exp(th) * ha
    w = tf.exp(tw) * wa
    return tf.stack([y - 0.5 * h, x - 0.5 * w, y + 0.5 * h, x + 0.5 * w], axis=-1)

"""RetinaNet losses: sigmoid focal loss and Huber box loss (docs/proxy_recipe.md#losses).

As the reference computes them:
- class loss: the focal loss summed over every anchor and class with class
  weight 1 (positive and negative anchors; ignored anchors weigh 0);
- box loss: the Huber loss averaged over the 4 codes of an anchor, summed
  over positive anchors;
- both divided by ``num_positives + 1`` where ``num_positives`` counts the
  positive anchors of the whole batch (the ``+ 1`` keeps an image batch
  without objects finite);
- ``model_loss = cls_loss + box_loss_weight * box_loss``;
- L2 weight decay ``0.5 * weight_decay * sum(kernel ** 2)`` over
  convolution kernels only (the reference's ``.*(kernel|weight):0$`` rule;
  its gradient is ``weight_decay * kernel``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import tensorflow as tf

from proxy_trainer.detector.anchors import Anchors

# docs/proxy_recipe.md#losses (the reference RetinaNet recipe).
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 1.5
HUBER_DELTA = 0.1
BOX_LOSS_WEIGHT = 50.0


def focal_loss(logits: tf.Tensor, targets: tf.Tensor, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA):
    """Element-wise sigmoid focal loss (Lin et al. 2017, eq. 5).

    ``FL = -alpha_t * (1 - p_t)**gamma * log(p_t)`` where ``p_t`` is the
    sigmoid probability of the true label and ``alpha_t`` is ``alpha`` for
    positive targets and ``1 - alpha`` for negative ones.

    Args:
      logits: float logits.
      targets: 0/1 targets of the same shape.
      alpha: weight of the positive class.
      gamma: focusing exponent.

    Returns:
      Float32 tensor of the shape of ``logits``.
    """
    logits = tf.cast(logits, tf.float32)
    targets = tf.cast(targets, tf.float32)
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    probs = tf.sigmoid(logits)
    p_t = targets * probs + (1.0 - targets) * (1.0 - probs)
    modulator = tf.pow(1.0 - p_t, gamma)
    alpha_t = targets * alpha + (1.0 - targets) * (1.0 - alpha)
    return alpha_t * modulator * cross_entropy


def huber_loss(predictions: tf.Tensor, targets: tf.Tensor, delta: float = HUBER_DELTA) -> tf.Tensor:
    """Element-wise Huber loss: ``0.5 x**2`` for ``|x| <= delta``, else ``delta * (|x| - 0.5 delta)``."""
    error = tf.abs(tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32))
    quadratic = tf.minimum(error, delta)
    return 0.5 * quadratic * quadratic + delta * (error - quadratic)


def retinanet_loss(
    outputs: Mapping[str, Mapping[str, tf.Tensor]],
    labels: Mapping[str, Any],
    anchors: Anchors,
    num_classes: int,
    alpha: float = FOCAL_ALPHA,
    gamma: float = FOCAL_GAMMA,
    huber_delta: float = HUBER_DELTA,
    box_loss_weight: float = BOX_LOSS_WEIGHT,
) -> dict[str, tf.Tensor]:
    """The RetinaNet loss of a batch.

    Args:
      outputs: the model's ``cls_outputs`` (level -> [B, H, W, A * K]) and
        ``box_outputs`` (level -> [B, H, W, A * 4]).
      labels: batched labeller targets: ``cls_targets`` (level -> [B, H, W, A],
        or flat [B, N]), ``box_targets`` (level -> [B, H, W, A * 4], or flat
        [B, N, 4]), ``cls_weights`` and ``box_weights`` ([B, N]).
      anchors: the anchors the labels were made with.
      num_classes: K.
      alpha: focal loss alpha.
      gamma: focal loss gamma.
      huber_delta: Huber delta of the box loss.
      box_loss_weight: multiplier of the box loss in ``model_loss``.

    Returns:
      ``cls_loss``, ``box_loss`` (unweighted), ``model_loss`` and
      ``num_positives`` (float32 scalars).
    """
    cls_logits = anchors.flatten(outputs["cls_outputs"], num_classes)  # [B, N, K]
    box_codes = anchors.flatten(outputs["box_outputs"], 4)  # [B, N, 4]
    cls_targets, box_targets = labels["cls_targets"], labels["box_targets"]
    if isinstance(cls_targets, Mapping):  # per level, as the host labeller batches them
        cls_targets = tf.squeeze(anchors.flatten(cls_targets, 1), -1)  # [B, N]
    if isinstance(box_targets, Mapping):
        box_targets = anchors.flatten(box_targets, 4)  # [B, N, 4]
    cls_weights = tf.cast(labels["cls_weights"], tf.float32)
    box_weights = tf.cast(labels["box_weights"], tf.float32)

    num_positives = tf.reduce_sum(box_weights)
    normalizer = num_positives + 1.0
    one_hot = tf.one_hot(tf.cast(cls_targets, tf.int32), num_classes, dtype=tf.float32)  # -1 -> all zeros
    cls_loss = tf.reduce_sum(focal_loss(cls_logits, one_hot, alpha, gamma) * cls_weights[..., None]) / normalizer
    per_anchor_box = tf.reduce_mean(huber_loss(box_codes, box_targets, huber_delta), axis=-1)
    box_loss = tf.reduce_sum(per_anchor_box * box_weights) / normalizer
    return {
        "cls_loss": cls_loss,
        "box_loss": box_loss,
        "model_loss": cls_loss + box_loss_weight * box_loss,
        "num_positives": num_positives,
    }


def is_decayed(variable: tf.Variable | Any) -> bool:
    """Whether weight decay applies: convolution / dense kernels (rank >= 2), not BN or biases."""
    name = getattr(variable, "path", None) or getattr(variable, "name", "")
    return name.rsplit("/", 1)[-1].split(":")[0] in ("kernel", "depthwise_kernel", "pointwise_kernel") or (
        len(variable.shape) >= 2 and "kernel" in name
    )


def weight_decay_loss(variables: Iterable[tf.Variable], weight_decay: float) -> tf.Tensor:
    """``0.5 * weight_decay * sum(v ** 2)`` over the decayed ``variables``, in float32."""
    terms = [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in variables if is_decayed(v)]
    if not terms or weight_decay == 0.0:
        return tf.constant(0.0, tf.float32)
    return 0.5 * weight_decay * tf.add_n(terms)

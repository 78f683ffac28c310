"""The layers every part of the detector is built from: batch norm, convolutions, activations.

``FusedBatchNormalization`` is Keras' batch norm on TensorFlow's fused kernel;
``LayerFactory`` applies a conv, a depthwise conv, batch norm or the
activation with the shared ``LayerSpec`` (activation, batch-norm momentum and
epsilon), so the SpineNet blocks (``spinenet.py``) and the MBConv blocks
(``mbconv.py``) build their layers alike.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from proxy_trainer.detector.config import LayerSpec


@keras.saving.register_keras_serializable(package="proxy_trainer")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras batch norm computed by TensorFlow's fused kernel (as tf-keras does).

    Same weights, arguments and semantics as ``keras.layers.BatchNormalization``
    (training uses the batch statistics and updates the moving ones by
    ``momentum``; the moving variance takes the unbiased batch variance, as in
    the reference). Keras 3 computes batch norm from separate moment and
    arithmetic ops, which makes a training step on CPU much slower; this layer
    uses ``FusedBatchNormV3`` whenever it applies (TensorFlow backend, 4-D
    channels-last input, no mask, no renorm) and Keras' own code otherwise.
    """

    def call(self, inputs, training=None, mask=None):
        if (
            keras.backend.backend() != "tensorflow"
            or mask is not None
            or getattr(self, "renorm", False)  # Keras before 3.14 has no renorm (and never renormalises)
            or len(inputs.shape) != 4
            or self.axis not in (3, -1)
            or not (self.scale and self.center)
        ):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)  # batch norm overflows easily in 16 bits
        args = dict(
            scale=tf.convert_to_tensor(self.gamma),
            offset=tf.convert_to_tensor(self.beta),
            mean=tf.convert_to_tensor(self.moving_mean),
            variance=tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon,
        )
        if training and self.trainable:
            y, moving_mean, moving_variance = tf.compat.v1.nn.fused_batch_norm(
                x, is_training=True, exponential_avg_factor=1.0 - self.momentum, **args
            )
            self.moving_mean.assign(moving_mean)
            self.moving_variance.assign(moving_variance)
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, is_training=False, **args)
        return tf.cast(y, self.compute_dtype)


class LayerFactory:
    """Applies single layers to symbolic tensors with the settings of one ``LayerSpec``.

    Convolutions have no bias (batch norm follows) unless asked, "same"
    padding and the reference's variance-scaling initializer.
    """

    def __init__(self, spec: LayerSpec):
        self.spec = spec

    def conv(self, x, filters: int, kernel: int, strides: int, name: str, use_bias: bool = False):
        return layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding="same",
            use_bias=use_bias,
            kernel_initializer="variance_scaling",
            name=name,
        )(x)

    def depthwise(self, x, kernel: int, strides: int, name: str):
        return layers.DepthwiseConv2D(
            kernel,
            strides=strides,
            padding="same",
            use_bias=False,
            depthwise_initializer="variance_scaling",
            name=name,
        )(x)

    def bn(self, x, name: str):
        return FusedBatchNormalization(momentum=self.spec.bn_momentum, epsilon=self.spec.bn_epsilon, name=name)(x)

    def act(self, x, name: str, activation: str | None = None):
        return layers.Activation(activation or self.spec.activation, name=name)(x)

    def conv_bn(self, x, filters: int, kernel: int, strides: int, name: str, act: bool):
        x = self.bn(self.conv(x, filters, kernel, strides, f"{name}_conv"), f"{name}_bn")
        return self.act(x, f"{name}_act") if act else x

"""Float operations counted from a built Keras graph, independently of the cost model.

``search_space.cost_model`` predicts the cost of a SpineNet/RetinaNet from its
architecture alone; this module measures the built model, so the two can be
checked against each other. It walks every call (node) of every layer of a
functional model, descending into nested functional models, and counts per
example (batch 1, inference) with the TensorFlow profiler's conventions:

* ``Conv2D``: ``2 * k_h * k_w * c_in * c_out * h_out * w_out``, plus one per
  output element for the bias when it has one;
* ``Add`` of n tensors: ``n - 1`` per output element;
* ``MaxPooling2D``: pool area per output element;
* ``DepthwiseConv2D``: ``2 * k_h * k_w`` per output element; ``SeparableConv2D``:
  its depthwise part, then a 1x1 conv with its bias;
* ``GlobalAveragePooling2D`` (a mean): one per input element; ``Multiply`` of
  n tensors: ``n - 1`` per output element;
* activations: the profiler's float ops of the reference's implementation of
  each (swish 2 per element, hard-swish 3, hard-sigmoid 2, ReLU 0);
* batch norm, nearest-neighbour upsampling, input layers: zero.

Any other layer type is an error, so nothing is silently left uncounted.
"""

from __future__ import annotations

import math

import keras
from keras import layers

_FREE = (
    layers.InputLayer,
    layers.BatchNormalization,
    layers.ReLU,
    layers.UpSampling2D,
)
# Keras' name of each activation function -> float ops per element.
_ACTIVATION_FLOPS = {"relu": 0, "linear": 0, "silu": 2, "hard_silu": 3, "hard_sigmoid": 2}


def _elements(tensor) -> int:
    """Elements per example (the batch dimension left out)."""
    return math.prod(int(d) for d in tensor.shape[1:])


def _node_flops(layer, node) -> int:
    if isinstance(layer, layers.Conv2D):
        kernel_h, kernel_w, c_in_per_group, _ = layer.kernel.shape
        out = _elements(node.output_tensors[0])
        flops = 2 * out * kernel_h * kernel_w * c_in_per_group
        return flops + (out if layer.use_bias else 0)
    if isinstance(layer, layers.DepthwiseConv2D):
        kernel_h, kernel_w = layer.kernel_size
        out = _elements(node.output_tensors[0])
        return 2 * out * kernel_h * kernel_w + (out if layer.use_bias else 0)
    if isinstance(layer, layers.SeparableConv2D):
        kernel_h, kernel_w = layer.kernel_size
        out_tensor = node.output_tensors[0]
        c_in = int(node.input_tensors[0].shape[-1])
        spatial = math.prod(int(d) for d in out_tensor.shape[1:3])
        out = _elements(out_tensor)
        return 2 * spatial * c_in * kernel_h * kernel_w + 2 * out * c_in + (out if layer.use_bias else 0)
    if isinstance(layer, layers.GlobalAveragePooling2D):
        return _elements(node.input_tensors[0])
    if isinstance(layer, layers.Activation):
        return _ACTIVATION_FLOPS[layer.activation.__name__] * _elements(node.output_tensors[0])
    if isinstance(layer, (layers.Add, layers.Multiply)):
        return (len(node.input_tensors) - 1) * _elements(node.output_tensors[0])
    if isinstance(layer, layers.MaxPooling2D):
        return math.prod(layer.pool_size) * _elements(node.output_tensors[0])
    if isinstance(layer, _FREE):
        return 0
    raise TypeError(f"graph_flops: no float-operation rule for layer {layer.name!r} of type {type(layer).__name__}")


def graph_flops(model: keras.Model) -> int:
    """Float operations per example of one forward pass of a functional model.

    Args:
      model: a functional Keras model (nested functional models are counted
        once per call).

    Returns:
      The count, with the conventions of the module docstring.

    Raises:
      TypeError: the graph holds a layer type this counter has no rule for.
    """
    total = 0
    for nodes in model._nodes_by_depth.values():  # noqa: SLF001 - Keras keeps the graph here
        for node in nodes:
            layer = node.operation
            if isinstance(layer, keras.Model):
                total += graph_flops(layer)
            else:
                total += _node_flops(layer, node)
    return total


def graph_multiply_adds(model: keras.Model) -> int:
    """``graph_flops(model) // 2``: the multiply-add convention of the paper."""
    return graph_flops(model) // 2

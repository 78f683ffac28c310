"""Parameter and float-operation counts of the layers SpineNet and RetinaNet are built from.

``search_space.cost_model`` walks an architecture and calls these counters
once per layer group: the block groups, the cross-scale resampling and the
RetinaNet head (docs/search_space.md: Blocks, Resampling and fusion, RetinaNet
head). Each counter adds to a ``Tally`` exactly what the Keras layers it
stands for hold and compute.

Conventions (batch 1, inference):

* ``params`` counts every weight the Keras model holds, trainable or not:
  conv kernels, conv biases (head only) and the four vectors of each batch
  norm (gamma, beta, moving mean, moving variance), as ``count_params()``
  does.
* ``flops`` follows the TensorFlow profiler's float-operation registry, the
  tool behind the published figures: a convolution is
  ``2 * k * k * c_in * c_out * h_out * w_out``, a bias add one per output
  element, a sum of n tensors ``n - 1`` per element (residual adds and
  parent fusion alike), a 3x3 max-pool 9 per output element. Batch norm
  (folded into the convolution at inference; the reference's fused op is
  not in the registry), ReLU, nearest-neighbour upsampling and reshapes
  count zero. A depthwise convolution is ``2 * k * k * c * h_out * w_out``,
  a spatial mean one per input element, a broadcast product one per output
  element. Activations count the float ops of the reference's own
  implementation (``ACTIVATION_FLOPS``): swish 2 per element (``beta * x``,
  ``x * sigmoid``), hard-swish 3 (``x + 3``, two products), hard-sigmoid 2.
* ``multiply_adds = flops // 2``: the paper's "FLOPs" are multiply-adds,
  measured as the profiler's float operations over two.
"""

from __future__ import annotations

import dataclasses

from search_space.architecture import BOTTLENECK, MBCONV
from search_space.errors import ArchitectureError
from search_space.widths import (
    BOX_PARAMS_PER_ANCHOR,
    MBCONV_EXPAND_RATIO,
    MBCONV_KERNEL,
    block_channels,
    resample_filters,
    se_filters,
)

# A 3x3 max-pool compares 9 inputs per output element (profiler convention).
_POOL_AREA = 9
# Float ops per element of each activation, as the TensorFlow profiler counts the reference's
# implementation of it (tf.nn.silu: beta * x and x * sigmoid; Model Garden's hard_swish:
# x + 3, then two products; hard_sigmoid: x + 3 and one product); ReLU and sigmoid are not in
# the profiler's registry.
ACTIVATION_FLOPS = {"relu": 0, "swish": 2, "hard_swish": 3}
_HARD_SIGMOID_FLOPS = 2


@dataclasses.dataclass
class Tally:
    """A running count; ``add`` keeps conv multiply-adds and other float ops apart."""

    params: int = 0
    conv_macs: int = 0
    other_flops: int = 0

    def conv(self, kernel: int, c_in: int, c_out: int, size_out: int, bias: bool = False) -> None:
        self.params += kernel * kernel * c_in * c_out + (c_out if bias else 0)
        self.conv_macs += kernel * kernel * c_in * c_out * size_out * size_out
        if bias:
            self.other_flops += c_out * size_out * size_out

    def depthwise(self, kernel: int, channels: int, size_out: int) -> None:
        self.params += kernel * kernel * channels
        self.conv_macs += kernel * kernel * channels * size_out * size_out

    def batch_norm(self, channels: int) -> None:
        self.params += 4 * channels

    def act(self, activation: str, channels: int, size: int) -> None:
        self.other_flops += ACTIVATION_FLOPS[activation] * channels * size * size

    def elementwise(self, elements: int) -> None:
        """One float op per element: a spatial mean (per input element) or a broadcast product."""
        self.other_flops += elements

    def add_n(self, n: int, channels: int, size: int) -> None:
        self.other_flops += (n - 1) * channels * size * size

    def max_pool(self, channels: int, size_out: int) -> None:
        self.other_flops += _POOL_AREA * channels * size_out * size_out

    def absorb(self, other: Tally) -> None:
        self.params += other.params
        self.conv_macs += other.conv_macs
        self.other_flops += other.other_flops

    @property
    def flops(self) -> int:
        return 2 * self.conv_macs + self.other_flops


def block_group_cost(
    tally: Tally,
    block_fn: str,
    c_in: int,
    filters: int,
    stride: int,
    repeats: int,
    size_in: int,
    size_out: int,
    activation: str = "relu",
) -> int:
    """A block group: ``repeats`` blocks chained, each taking the previous one's output; the first
    may stride and project, the others keep the shape.

    Returns:
      The output channels.
    """
    if block_fn == MBCONV:
        for r in range(repeats):
            first = r == 0
            c_in = mbconv_cost(
                tally, c_in, filters, stride if first else 1, size_in if first else size_out, size_out, activation
            )
        return c_in
    c_out = block_channels(block_fn, filters)
    for r in range(repeats):
        s = stride if r == 0 else 1
        if c_in != c_out or s != 1:  # projection shortcut, as the reference decides it
            tally.conv(1, c_in, c_out, size_out)
            tally.batch_norm(c_out)
        if block_fn == BOTTLENECK:
            size_first = size_in if r == 0 else size_out
            tally.conv(1, c_in, filters, size_first)  # the stride sits on the 3x3
            tally.batch_norm(filters)
            tally.act(activation, filters, size_first)
            tally.conv(3, filters, filters, size_out)
            tally.batch_norm(filters)
            tally.act(activation, filters, size_out)
            tally.conv(1, filters, c_out, size_out)
            tally.batch_norm(c_out)
        else:
            tally.conv(3, c_in, filters, size_out)
            tally.batch_norm(filters)
            tally.act(activation, filters, size_out)
            tally.conv(3, filters, filters, size_out)
            tally.batch_norm(filters)
        tally.add_n(2, c_out, size_out)
        tally.act(activation, c_out, size_out)
        c_in = c_out
    return c_out


def mbconv_cost(tally: Tally, c_in: int, c_out: int, stride: int, size_in: int, size_out: int, activation: str) -> int:
    """An MBConv block (docs/search_space.md#spinenet-mobile).

    1x1 expansion to ``6 * c_in`` -> BN -> act; 3x3 depthwise (strided) -> BN
    -> act; squeeze-excitation (spatial mean, 1x1 conv with bias to
    ``se_filters(c_in)``, ReLU, 1x1 conv with bias back, hard-sigmoid, product);
    1x1 projection -> BN; the input is added when the shape is kept. No
    activation at the end.

    Returns:
      The output channels.
    """
    expanded = c_in * MBCONV_EXPAND_RATIO
    tally.conv(1, c_in, expanded, size_in)
    tally.batch_norm(expanded)
    tally.act(activation, expanded, size_in)
    tally.depthwise(MBCONV_KERNEL, expanded, size_out)
    tally.batch_norm(expanded)
    tally.act(activation, expanded, size_out)
    squeezed = se_filters(c_in)
    tally.elementwise(expanded * size_out * size_out)  # spatial mean
    tally.conv(1, expanded, squeezed, 1, bias=True)
    tally.conv(1, squeezed, expanded, 1, bias=True)
    tally.elementwise(_HARD_SIGMOID_FLOPS * expanded)
    tally.elementwise(expanded * size_out * size_out)  # gate the features
    tally.conv(1, expanded, c_out, size_out)
    tally.batch_norm(c_out)
    if c_in == c_out and stride == 1:
        tally.add_n(2, c_out, size_out)
    return c_out


def resample_cost(
    tally: Tally,
    where: str,
    c_parent: int,
    fn_parent: str,
    s_parent: int,
    s_target: int,
    c_target: int,
    alpha: float,
    activation: str = "relu",
) -> None:
    """Cross-scale resampling of one parent (docs/search_space.md#resampling-and-fusion)."""
    if fn_parent == MBCONV:
        _mobile_resample_cost(tally, c_parent, s_parent, s_target, c_target, activation)
        return
    reduced = resample_filters(c_parent, fn_parent, alpha)
    if reduced < 1:
        raise ArchitectureError(
            f"{where}: resample_alpha {alpha} reduces {c_parent} channels to 0; raise resample_alpha or filter_size_scale"
        )
    tally.conv(1, c_parent, reduced, s_parent)
    tally.batch_norm(reduced)
    tally.act(activation, reduced, s_parent)
    size = s_parent
    if size > s_target:
        size = -(-size // 2)
        tally.conv(3, reduced, reduced, size)
        tally.batch_norm(reduced)
        tally.act(activation, reduced, size)
        while size > s_target:
            size = -(-size // 2)
            tally.max_pool(reduced, size)
    tally.conv(1, reduced, c_target, s_target)
    tally.batch_norm(c_target)


def _mobile_resample_cost(
    tally: Tally, c_parent: int, s_parent: int, s_target: int, c_target: int, activation: str
) -> None:
    """SpineNet-Mobile resampling: no alpha step; down by 3x3 stride-2 depthwise convs
    (each -> BN -> act), up by nearest neighbour; then a 1x1 conv to the target width -> BN."""
    size = s_parent
    while size > s_target:
        size = -(-size // 2)
        tally.depthwise(3, c_parent, size)
        tally.batch_norm(c_parent)
        tally.act(activation, c_parent, size)
    tally.conv(1, c_parent, c_target, s_target)
    tally.batch_norm(c_target)


def head_cost(
    endpoint_shapes,
    num_classes: int,
    num_anchors: int,
    num_convs: int,
    num_filters: int,
    activation: str = "relu",
    separable: bool = False,
) -> tuple[Tally, tuple[tuple[int, int, int, int, int], ...]]:
    """RetinaNet head: class and box subnets whose convs are shared across levels.

    Each subnet is ``num_convs`` x (3x3 conv with bias -> batch norm -> act),
    with one batch norm per level, then a 3x3 conv with bias to the outputs.
    ``separable``: every one of those convs is a 3x3 depthwise conv followed by
    a 1x1 conv with bias (the SpineNet-Mobile head).
    """
    tally = Tally()
    shapes = []
    for n, (level, height, _, c_in) in enumerate(endpoint_shapes):
        per_level = Tally()
        for outputs in (num_anchors * num_classes, num_anchors * BOX_PARAMS_PER_ANCHOR):
            channels = c_in
            for _ in range(num_convs):
                _head_conv(per_level, channels, num_filters, height, separable)
                per_level.batch_norm(num_filters)
                per_level.act(activation, num_filters, height)
                channels = num_filters
            _head_conv(per_level, channels, outputs, height, separable)
        if n:  # the convs are shared: only the per-level batch norms add weights
            per_level.params = 2 * num_convs * 4 * num_filters
        tally.absorb(per_level)
        shapes.append((level, height, height, num_anchors * num_classes, num_anchors * BOX_PARAMS_PER_ANCHOR))
    return tally, tuple(shapes)


def _head_conv(tally: Tally, c_in: int, c_out: int, size: int, separable: bool) -> None:
    """A 3x3 head conv with bias, or its separable form (3x3 depthwise, then 1x1 with bias)."""
    if separable:
        tally.depthwise(3, c_in, size)
        tally.conv(1, c_in, c_out, size, bias=True)
    else:
        tally.conv(3, c_in, c_out, size, bias=True)

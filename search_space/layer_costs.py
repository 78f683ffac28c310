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
  not in the registry), activations, nearest-neighbour upsampling and
  reshapes count zero.
* ``multiply_adds = flops // 2``: the paper's "FLOPs" are multiply-adds,
  measured as the profiler's float operations over two.
"""

from __future__ import annotations

import dataclasses

from search_space.architecture import BOTTLENECK
from search_space.errors import ArchitectureError
from search_space.widths import BOTTLENECK_EXPANSION, BOX_PARAMS_PER_ANCHOR, resample_filters

# A 3x3 max-pool compares 9 inputs per output element (profiler convention).
_POOL_AREA = 9


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

    def batch_norm(self, channels: int) -> None:
        self.params += 4 * channels

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
    tally: Tally, block_fn: str, c_in: int, filters: int, stride: int, repeats: int, size_in: int, size_out: int
) -> int:
    """A block group: the first block may stride and project, the repeats keep the shape.

    Returns:
      The output channels.
    """
    c_out = filters * BOTTLENECK_EXPANSION if block_fn == BOTTLENECK else filters
    for r in range(repeats):
        s = stride if r == 0 else 1
        if c_in != c_out or s != 1:  # projection shortcut, as the reference decides it
            tally.conv(1, c_in, c_out, size_out)
            tally.batch_norm(c_out)
        if block_fn == BOTTLENECK:
            tally.conv(1, c_in, filters, size_in if r == 0 else size_out)  # the stride sits on the 3x3
            tally.batch_norm(filters)
            tally.conv(3, filters, filters, size_out)
            tally.batch_norm(filters)
            tally.conv(1, filters, c_out, size_out)
            tally.batch_norm(c_out)
        else:
            tally.conv(3, c_in, filters, size_out)
            tally.batch_norm(filters)
            tally.conv(3, filters, filters, size_out)
            tally.batch_norm(filters)
        tally.add_n(2, c_out, size_out)
        c_in = c_out
    return c_out


def resample_cost(
    tally: Tally, where: str, c_parent: int, fn_parent: str, s_parent: int, s_target: int, c_target: int, alpha: float
) -> None:
    """Cross-scale resampling of one parent (docs/search_space.md#resampling-and-fusion)."""
    reduced = resample_filters(c_parent, fn_parent, alpha)
    if reduced < 1:
        raise ArchitectureError(
            f"{where}: resample_alpha {alpha} reduces {c_parent} channels to 0; raise resample_alpha or filter_size_scale"
        )
    tally.conv(1, c_parent, reduced, s_parent)
    tally.batch_norm(reduced)
    size = s_parent
    if size > s_target:
        size = -(-size // 2)
        tally.conv(3, reduced, reduced, size)
        tally.batch_norm(reduced)
        while size > s_target:
            size = -(-size // 2)
            tally.max_pool(reduced, size)
    tally.conv(1, reduced, c_target, s_target)
    tally.batch_norm(c_target)


def head_cost(
    endpoint_shapes, num_classes: int, num_anchors: int, num_convs: int, num_filters: int
) -> tuple[Tally, tuple[tuple[int, int, int, int, int], ...]]:
    """RetinaNet head: class and box subnets whose convs are shared across levels.

    Each subnet is ``num_convs`` x (3x3 conv with bias -> batch norm -> act),
    with one batch norm per level, then a 3x3 conv with bias to the outputs.
    """
    tally = Tally()
    shapes = []
    for n, (level, height, _, c_in) in enumerate(endpoint_shapes):
        per_level = Tally()
        for outputs in (num_anchors * num_classes, num_anchors * BOX_PARAMS_PER_ANCHOR):
            channels = c_in
            for _ in range(num_convs):
                per_level.conv(3, channels, num_filters, height, bias=True)
                per_level.batch_norm(num_filters)
                channels = num_filters
            per_level.conv(3, channels, outputs, height, bias=True)
        if n:  # the convs are shared: only the per-level batch norms add weights
            per_level.params = 2 * num_convs * 4 * num_filters
        tally.absorb(per_level)
        shapes.append((level, height, height, num_anchors * num_classes, num_anchors * BOX_PARAMS_PER_ANCHOR))
    return tally, tuple(shapes)

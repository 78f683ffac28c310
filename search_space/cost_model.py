"""Exact parameter and multiply-add counts of SpineNet + RetinaNet, in pure Python.

The search filters or penalises architectures by cost without building
models, so this module walks an :class:`~search_space.Architecture` exactly
as the model builder (``proxy_trainer.detector.spinenet`` and ``proxy_trainer.detector.retinanet``)
does and the public reference implementation does (docs/search_space.md:
Meta-architecture, Block widths, Blocks, Resampling and fusion, RetinaNet
head), and counts every weight and every operation. Tests check that it
equals the built Keras model's ``count_params()`` and an operation count
taken from the built graph, for random architectures and every preset.

Conventions (batch 1, inference) are those of ``search_space.layer_costs``,
which counts each layer group: ``params`` is every weight the Keras model
holds, trainable or not, as ``count_params()`` gives it; ``flops`` follows the
TensorFlow profiler's float-operation registry; and ``multiply_adds = flops // 2``,
the paper's "FLOPs".

With this convention the SpineNet-49 RetinaNet at 640 px with 90 classes and a
4 x 256 head has 85,152,135,675 multiply-adds: 0.3% below the published 85.4B
(docs/search_space.md#parameters-and-multiply-adds), and exactly what the
TensorFlow profiler gives for the public reference implementation
(tf-models-official 2.20.0, frozen inference graph: 170,304,271,360 float
ops), less the 10 integer shape multiplications its 5 upsamplings add to the
count. Parameters match the reference exactly too (28,631,822; backbone
21,920,192); ``bench/bench_model.py --parity=N`` repeats the comparison on
random architectures. The convolutions' own multiply-accumulates (99.9% of the
total) are ``conv_multiply_adds``.

A SpineNet-Mobile (``mbconv`` blocks; docs/search_space.md#spinenet-mobile) is
walked the same way with its own stem, widths, blocks and resampling; its
parameters and float operations equal the reference ``SpineNetMobile``'s too
(``bench/bench_mobile.py``). Swish and hard-swish add the float operations the
profiler counts in the reference's implementation of them (``activation``).

A block's own width multiplier and repeat count (resource distribution,
docs/search_space.md#resource-distribution) change its width
(``widths.block_width``) and the blocks of its group, which are chained as the
Keras model chains them; the resampling into and out of it follows its width.

The model is what reaches the outputs: a block that no later block consumes,
that is not summed into an output, and is not an output in
``min_level..max_level`` is dead; Keras drops such layers from a functional
model, and so does this count.
"""

from __future__ import annotations

import dataclasses

from search_space.architecture import SPINENET_MOBILE, Architecture, validate_architecture
from search_space.errors import ArchitectureError
from search_space.layer_costs import ACTIVATION_FLOPS, Tally, block_group_cost, head_cost, resample_cost
from search_space.widths import (
    FILTER_SIZE_MAP,
    MOBILE_STEM_CONV_KERNEL,
    STEM_CONV_KERNEL,
    STEM_LEVEL,
    block_channels,
    block_filters,
    block_width,
    check_input_size,
    level_size,
    stem_conv_filters,
    stem_level,
)


@dataclasses.dataclass(frozen=True)
class BlockCost:
    """One entry of the running list (stem candidate or scale-permuted block).

    Attributes:
      index: running-list index (``0..m-1`` are the stem candidates).
      level: feature level.
      block_fn: ``"bottleneck"`` or ``"residual"``.
      parents: the two parents (empty for a stem candidate).
      merged: blocks summed in raw because nobody had consumed them when this
        output block was built and their shape matched (reference rule).
      is_output: whether this block is the output of its level.
      size: spatial side of the block's output.
      channels: output channels.
      width_multiplier: the block's own width multiplier (1.0 for a stem candidate).
      repeats: blocks in its group, chained (its ``block_repeats`` times the scaling's).
      live: whether it reaches the model's outputs (dead blocks are not built).
      params: weights of this block: its block group and, for a scale-permuted
        block, the resampling of its two parents.
      multiply_adds: the same part's multiply-adds (``flops // 2``).
    """

    index: int
    level: int
    block_fn: str
    parents: tuple[int, ...]
    merged: tuple[int, ...]
    is_output: bool
    size: int
    channels: int
    live: bool
    params: int
    multiply_adds: int
    width_multiplier: float = 1.0
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class ModelCost:
    """Cost of a SpineNet backbone and of the RetinaNet built on it (batch 1).

    Attributes:
      params: all weights of backbone + head.
      multiply_adds: ``flops // 2`` of backbone + head (see the module docstring).
      backbone_params: weights of the backbone (stem, blocks, endpoint convs).
      backbone_multiply_adds: ``backbone_flops // 2``.
      flops: TensorFlow-profiler float operations of backbone + head.
      backbone_flops: the same for the backbone alone.
      conv_multiply_adds: multiply-accumulates of the convolutions alone.
      endpoint_shapes: ``(level, height, width, channels)`` of P3..P7.
      head_shapes: ``(level, height, width, A*K, A*4)``: class and box outputs
        per level (empty when no head was costed).
      blocks: one entry per stem candidate and scale-permuted block.
    """

    params: int
    multiply_adds: int
    backbone_params: int
    backbone_multiply_adds: int
    flops: int
    backbone_flops: int
    conv_multiply_adds: int
    endpoint_shapes: tuple[tuple[int, int, int, int], ...]
    head_shapes: tuple[tuple[int, int, int, int, int], ...]
    blocks: tuple[BlockCost, ...]


@dataclasses.dataclass
class _Entry:
    """A running-list entry while walking the network."""

    index: int
    level: int
    block_fn: str
    parents: tuple[int, ...]
    merged: tuple[int, ...]
    is_output: bool
    size: int
    channels: int
    tally: Tally
    inputs: tuple[int, ...]  # running-list entries this one reads
    width_multiplier: float = 1.0
    repeats: int = 1


def _check_levels(arch: Architecture, min_level: int, max_level: int) -> None:
    if not 1 <= min_level <= max_level <= max(FILTER_SIZE_MAP):
        raise ArchitectureError(
            f"min_level {min_level} and max_level {max_level} must satisfy 1 <= min <= max <= {max(FILTER_SIZE_MAP)}"
        )
    validate_architecture(
        arch,
        min_level=min(FILTER_SIZE_MAP),
        max_level=max(FILTER_SIZE_MAP),
        output_levels=tuple(range(min_level, max_level + 1)),
    )
    previous = stem_level(arch.family)
    for i, s in enumerate(arch.stem):
        if s.level not in (previous, previous + 1):
            raise ArchitectureError(
                f"stem {i}: level {s.level} cannot follow level {previous}; a stem candidate stays at the "
                f"level before it or goes one level up (allowed {previous}..{previous + 1})"
            )
        previous = s.level


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATION_FLOPS:
        raise ArchitectureError(f"activation {activation!r} is unknown; allowed {', '.join(ACTIVATION_FLOPS)}")


def _stem_cost(arch: Architecture, input_size: int, activation: str) -> tuple[Tally, int]:
    """The stem conv -> BN -> act (7x7 for a SpineNet, then its max-pool; 3x3 for a SpineNet-Mobile).

    Returns:
      The tally and the conv's width.
    """
    stem = Tally()
    mobile = arch.family == SPINENET_MOBILE
    filters = stem_conv_filters(arch.family, arch.scaling.filter_size_scale)
    size = level_size(input_size, 1)
    stem.conv(MOBILE_STEM_CONV_KERNEL if mobile else STEM_CONV_KERNEL, 3, filters, size)
    stem.batch_norm(filters)
    stem.act(activation, filters, size)
    if not mobile:
        stem.max_pool(filters, level_size(input_size, STEM_LEVEL))
    return stem, filters


def _walk_backbone(arch: Architecture, input_size: int, min_level: int, max_level: int, activation: str = "relu"):
    """Counts the stem, every running-list entry and the endpoint convs.

    Returns:
      (stem tally, entries, live entry indices, endpoint tally, endpoint shapes).
    """
    _check_levels(arch, min_level, max_level)
    _check_activation(activation)
    first = stem_level(arch.family)
    levels = [first, max_level] + [s.level for s in arch.stem] + [b.level for b in arch.blocks]
    check_input_size(input_size, min(levels), max(levels))
    scale = arch.scaling
    repeats = scale.block_repeats

    stem, channels = _stem_cost(arch, input_size, activation)
    entries: list[_Entry] = []
    level = first
    for i, s in enumerate(arch.stem):
        tally = Tally()
        filters = block_filters(s.block_fn, s.level, scale.filter_size_scale, f"stem {i}")
        size_in, size = level_size(input_size, level), level_size(input_size, s.level)
        stride = 1 if s.level == level else 2
        channels = block_group_cost(tally, s.block_fn, channels, filters, stride, repeats, size_in, size, activation)
        inputs = (i - 1,) if i else ()
        entries.append(_Entry(i, s.level, s.block_fn, (), (), False, size, channels, tally, inputs, 1.0, repeats))
        level = s.level

    outgoing = [0] * len(entries)
    for k, b in enumerate(arch.blocks):
        idx = arch.num_stem + k
        where = f"block {idx}"
        filters = block_width(b.block_fn, b.level, scale.filter_size_scale, b.width_multiplier, where)
        size = level_size(input_size, b.level)
        channels = block_channels(b.block_fn, filters)
        tally = Tally()
        for p in b.parents:
            parent = entries[p]
            resample_cost(
                tally,
                f"{where}: parent {p}",
                parent.channels,
                parent.block_fn,
                parent.size,
                size,
                channels,
                scale.resample_alpha,
                activation,
            )
            outgoing[p] += 1
        merged = []
        if b.is_output:
            # Reference rule: entries nobody has consumed *so far* are summed in raw
            # when their size and channels match the resampled parents.
            for j, e in enumerate(entries):
                if outgoing[j] == 0 and e.size == size and e.channels == channels:
                    merged.append(j)
                    outgoing[j] += 1
        tally.add_n(2 + len(merged), channels, size)
        tally.act(activation, channels, size)
        block_group_cost(tally, b.block_fn, channels, filters, 1, arch.repeats(k), size, size, activation)
        entries.append(
            _Entry(
                idx,
                b.level,
                b.block_fn,
                tuple(b.parents),
                tuple(merged),
                b.is_output,
                size,
                channels,
                tally,
                tuple(b.parents) + tuple(merged),
                b.width_multiplier,
                arch.repeats(k),
            )
        )
        outgoing.append(0)

    outputs = {e.level: e for e in entries[arch.num_stem :] if e.is_output}
    live: set[int] = set()
    stack = [outputs[lv].index for lv in range(min_level, max_level + 1)]
    while stack:
        j = stack.pop()
        if j not in live:
            live.add(j)
            stack.extend(entries[j].inputs)

    endpoints = Tally()
    shapes = []
    for lv in range(min_level, max_level + 1):
        e = outputs[lv]
        endpoints.conv(1, e.channels, scale.endpoints_num_filters, e.size)
        endpoints.batch_norm(scale.endpoints_num_filters)
        endpoints.act(activation, scale.endpoints_num_filters, e.size)
        shapes.append((lv, e.size, e.size, scale.endpoints_num_filters))
    return stem, entries, live, endpoints, tuple(shapes)


def check_buildable(architecture: Architecture, *, input_size: int, min_level: int = 3, max_level: int = 7) -> None:
    """Raises ArchitectureError unless ``architecture`` builds into a model at ``input_size``.

    The checks are those of ``model_cost``: a valid architecture with one
    output per level ``min_level..max_level``, stem candidates that stay at
    their level or go one up, an input size whose levels resample exactly,
    and a scaling that leaves every convolution at least one channel.
    """
    _walk_backbone(architecture, input_size, min_level, max_level)


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArchitectureError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def model_cost(
    architecture: Architecture,
    *,
    input_size: int,
    num_classes: int | None = None,
    head_num_convs: int = 4,
    head_num_filters: int = 256,
    num_anchors: int = 9,
    min_level: int = 3,
    max_level: int = 7,
    activation: str = "relu",
    head_separable: bool = False,
) -> ModelCost:
    """Exact cost of the SpineNet backbone of ``architecture`` and its RetinaNet.

    Args:
      architecture: the topology with its scaling (``architecture.scaling``).
      input_size: side of the square input image in pixels.
      num_classes: class logits per anchor (no background class); None costs
        the backbone alone (``params == backbone_params``).
      head_num_convs: convs per head subnet (0 allowed).
      head_num_filters: width of the head convs.
      num_anchors: anchors per location (scales x aspect ratios).
      min_level: lowest endpoint level (P3).
      max_level: highest endpoint level (P7).
      activation: ``"relu"``, ``"swish"`` or ``"hard_swish"`` (its float ops
        per element are counted as the profiler counts the reference's).
      head_separable: whether the head's convs are separable (depthwise 3x3
        then 1x1), as in the SpineNet-Mobile RetinaNet.

    Returns:
      The ModelCost (batch 1, inference; see the module docstring).

    Raises:
      ArchitectureError: an invalid architecture, an input size whose levels do
        not resample exactly, a scaling that leaves 0 channels somewhere, or a
        bad head setting; the message names the place.
    """
    stem, entries, live, endpoints, endpoint_shapes = _walk_backbone(
        architecture, input_size, min_level, max_level, activation
    )
    backbone = Tally()
    backbone.absorb(stem)
    for e in entries:
        if e.index in live:
            backbone.absorb(e.tally)
    backbone.absorb(endpoints)
    total = Tally()
    total.absorb(backbone)
    head_shapes: tuple = ()
    if num_classes is not None:
        _positive_int("num_classes", num_classes)
        _positive_int("head_num_convs", head_num_convs, 0)
        _positive_int("head_num_filters", head_num_filters)
        _positive_int("num_anchors", num_anchors)
        head, head_shapes = head_cost(
            endpoint_shapes, num_classes, num_anchors, head_num_convs, head_num_filters, activation, head_separable
        )
        total.absorb(head)
    blocks = tuple(
        BlockCost(
            index=e.index,
            level=e.level,
            block_fn=e.block_fn,
            parents=e.parents,
            merged=e.merged,
            is_output=e.is_output,
            size=e.size,
            channels=e.channels,
            live=e.index in live,
            params=e.tally.params,
            multiply_adds=e.tally.flops // 2,
            width_multiplier=e.width_multiplier,
            repeats=e.repeats,
        )
        for e in entries
    )
    return ModelCost(
        params=total.params,
        multiply_adds=total.flops // 2,
        backbone_params=backbone.params,
        backbone_multiply_adds=backbone.flops // 2,
        flops=total.flops,
        backbone_flops=backbone.flops,
        conv_multiply_adds=total.conv_macs,
        endpoint_shapes=endpoint_shapes,
        head_shapes=head_shapes,
        blocks=blocks,
    )

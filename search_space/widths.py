"""Widths and spatial sizes of a SpineNet: the shape rules the model builder and the cost model share.

Pure Python (docs/search_space.md: Meta-architecture, Block widths,
Resampling and fusion): base channels per level, the stem, bottleneck
expansion, the alpha-scaled resampling width, and which input sizes resample
exactly between levels.
"""

from __future__ import annotations

from search_space.architecture import BOTTLENECK, MBCONV, SPINENET_MOBILE
from search_space.errors import ArchitectureError

# docs/search_space.md#block-widths: base channels per level, before filter_size_scale.
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}
# docs/search_space.md#meta-architecture: the ResNet stem, a 7x7 stride-2 conv with 64 filters
# (not scaled), then a 3x3 stride-2 max-pool, ends at L2.
STEM_CONV_FILTERS = 64
STEM_CONV_KERNEL = 7
STEM_LEVEL = 2
# docs/search_space.md#block-widths: a bottleneck block outputs 4x its base channels.
BOTTLENECK_EXPANSION = 4
# RetinaNet (docs/search_space.md#retinanet-head): 4 box coordinates per anchor.
BOX_PARAMS_PER_ANCHOR = 4

# docs/search_space.md#spinenet-mobile (reference ``spinenet_mobile.py``): one width per level
# before filter_size_scale; L0 is the stem conv's, a 3x3 stride-2 conv that ends at L1.
MOBILE_FILTER_SIZE_MAP = {0: 8, 1: 16, 2: 24, 3: 40, 4: 80, 5: 112, 6: 112, 7: 112}
MOBILE_STEM_CONV_KERNEL = 3
MOBILE_STEM_LEVEL = 1
# MBConv: a 1x1 expansion by 6, a 3x3 depthwise conv, squeeze-excitation of 0.2 of the
# block's input width, a 1x1 projection (reference defaults of SpineNetMobile).
MBCONV_EXPAND_RATIO = 6
MBCONV_KERNEL = 3
MBCONV_SE_RATIO = 0.2


def stem_level(family: str) -> int:
    """The level at which the stem conv (and, for a SpineNet, its max-pool) leaves the image."""
    return MOBILE_STEM_LEVEL if family == SPINENET_MOBILE else STEM_LEVEL


def filter_size_map(family: str) -> dict[int, int]:
    """Base channels per level of a family."""
    return MOBILE_FILTER_SIZE_MAP if family == SPINENET_MOBILE else FILTER_SIZE_MAP


def stem_conv_filters(family: str, filter_size_scale: float) -> int:
    """Width of the stem conv: 64 for a SpineNet (never scaled), ``int(8 * scale)`` for a SpineNet-Mobile."""
    if family == SPINENET_MOBILE:
        return _scaled(MOBILE_FILTER_SIZE_MAP, 0, filter_size_scale, "stem conv")
    return STEM_CONV_FILTERS


def block_filters(block_fn: str, level: int, filter_size_scale: float, where: str = "") -> int:
    """Base channels of a block of type ``block_fn`` at ``level`` (its family's width table, scaled)."""
    if block_fn == MBCONV:
        return _scaled(MOBILE_FILTER_SIZE_MAP, level, filter_size_scale, where)
    return base_filters(level, filter_size_scale, where)


def block_width(block_fn: str, level: int, filter_size_scale: float, width_multiplier: float, where: str = "") -> int:
    """Base channels of a block with its own width multiplier (docs/search_space.md#resource-distribution).

    ``int(block_filters(...) * width_multiplier)``: the level's width under the
    scaling, then the block's multiplier, truncated as the scaling's own
    multiplier is; a multiplier of 1 leaves the width unchanged.

    Raises:
      ArchitectureError: the multiplier leaves the block with 0 channels (naming ``where``).
    """
    base = block_filters(block_fn, level, filter_size_scale, where)
    filters = int(base * width_multiplier)
    if filters < 1:
        prefix = f"{where}: " if where else ""
        raise ArchitectureError(
            f"{prefix}width_multiplier {width_multiplier} leaves {base} channels at level {level} with 0; "
            f"use at least {1 / base:g}"
        )
    return filters


def block_channels(block_fn: str, filters: int) -> int:
    """Output channels of a block with ``filters`` base channels (4x for a bottleneck)."""
    return filters * BOTTLENECK_EXPANSION if block_fn == BOTTLENECK else filters


def se_filters(c_in: int, se_ratio: float = MBCONV_SE_RATIO) -> int:
    """Squeeze-excitation width of an MBConv block with ``c_in`` input channels: ``max(1, int(c_in * ratio))``."""
    return max(1, int(c_in * se_ratio))


def level_size(input_size: int, level: int) -> int:
    """Spatial side of level ``level``: ``ceil(input_size / 2**level)`` (SAME padding)."""
    return -(-input_size // (2**level))


def check_input_size(input_size: int, min_level: int = STEM_LEVEL, max_level: int = 7) -> None:
    """Raises ArchitectureError unless resampling between any two levels is exact.

    Upsampling uses the integer factor between the two sizes and downsampling
    halves (rounding up) until the size is reached, as the reference model
    does; sizes such as 96 px (L5 = 3, L6 = 2) cannot be resampled. Multiples
    of ``2**max_level`` and small powers of two always work.
    """
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 2**STEM_LEVEL:
        raise ArchitectureError(f"input_size must be an integer >= {2**STEM_LEVEL}, got {input_size!r}")
    sizes = {lv: level_size(input_size, lv) for lv in range(min_level, max_level + 1)}
    for lo in sizes:
        for hi in sizes:
            if hi <= lo:
                continue
            s_lo, s_hi = sizes[lo], sizes[hi]
            down = s_lo
            while down > s_hi:
                down = -(-down // 2)
            if s_lo % s_hi or down != s_hi:
                raise ArchitectureError(
                    f"input_size {input_size}: level {hi} ({s_hi} px) and level {lo} ({s_lo} px) do not "
                    f"resample exactly; use a multiple of {2**max_level} or a power of two"
                )


def base_filters(level: int, filter_size_scale: float, where: str = "") -> int:
    """Base channels of a block at ``level``: ``int(FILTER_SIZE_MAP[level] * filter_size_scale)``."""
    return _scaled(FILTER_SIZE_MAP, level, filter_size_scale, where)


def _scaled(widths: dict[int, int], level: int, filter_size_scale: float, where: str) -> int:
    prefix = f"{where}: " if where else ""
    if level not in widths:
        raise ArchitectureError(f"{prefix}level {level} has no base width; allowed {min(widths)}..{max(widths)}")
    filters = int(widths[level] * filter_size_scale)
    if filters < 1:
        raise ArchitectureError(
            f"{prefix}filter_size_scale {filter_size_scale} leaves level {level} with 0 channels; "
            f"use at least {1 / widths[level]:g}"
        )
    return filters


def resample_filters(parent_channels: int, parent_block_fn: str, alpha: float) -> int:
    """Channels after the alpha 1x1 conv: ``int(C_parent * alpha)`` (docs/search_space.md#resampling-and-fusion).

    ``C_parent`` is the parent's base width (its output width / 4 for a
    bottleneck), computed in floating point as the reference does.
    """
    base = parent_channels / BOTTLENECK_EXPANSION if parent_block_fn == BOTTLENECK else parent_channels
    return int(base * alpha)

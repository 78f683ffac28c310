"""Widths and spatial sizes of a SpineNet: the shape rules the model builder and the cost model share.

Pure Python (docs/search_space.md: Meta-architecture, Block widths,
Resampling and fusion): base channels per level, the stem, bottleneck
expansion, the alpha-scaled resampling width, and which input sizes resample
exactly between levels.
"""

from __future__ import annotations

from search_space.architecture import BOTTLENECK
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
    prefix = f"{where}: " if where else ""
    if level not in FILTER_SIZE_MAP:
        raise ArchitectureError(
            f"{prefix}level {level} has no base width; allowed {min(FILTER_SIZE_MAP)}..{max(FILTER_SIZE_MAP)}"
        )
    filters = int(FILTER_SIZE_MAP[level] * filter_size_scale)
    if filters < 1:
        raise ArchitectureError(
            f"{prefix}filter_size_scale {filter_size_scale} leaves level {level} with 0 channels; "
            f"use at least {1 / FILTER_SIZE_MAP[level]:g}"
        )
    return filters


def resample_filters(parent_channels: int, parent_block_fn: str, alpha: float) -> int:
    """Channels after the alpha 1x1 conv: ``int(C_parent * alpha)`` (docs/search_space.md#resampling-and-fusion).

    ``C_parent`` is the parent's base width (its output width / 4 for a
    bottleneck), computed in floating point as the reference does.
    """
    base = parent_channels / BOTTLENECK_EXPANSION if parent_block_fn == BOTTLENECK else parent_channels
    return int(base * alpha)

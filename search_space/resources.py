"""Resource distribution options of a search space (docs/search_space.md#resource-distribution).

A space may decide, for every scale-permuted block, a width multiplier and a
repeat count among configured choices, and may keep a found topology fixed so
that only those are searched (the Mobile paper's step: a resource distribution
learned over a previously learned scale-permuted architecture). This module
checks the choices, turns a fixed topology given as a preset, a file or block
specs into its one stored form, and checks an architecture's resources against
a space. ``search_space.space`` holds the options; pure Python.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from search_space.architecture import MBCONV, Architecture, BlockSpec, Scaling
from search_space.errors import ArchitectureError
from search_space.widths import block_channels, block_width, resample_filters

# The block-spec form of a fixed topology: (level, block_fn, (parent, parent), is_output) per
# scale-permuted block, as the reference writes its blocks (stem excluded: it is the space's).
TopologySpec = tuple[tuple[int, str, tuple[int, int], bool], ...]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_choices(width_multipliers: Sequence, block_repeats: Sequence) -> None:
    """Raises ArchitectureError unless the choices are distinct, positive numbers (repeats: integers).

    Empty means the option is off: every block keeps the default.
    """
    for m in width_multipliers:
        if not isinstance(m, (int, float)) or isinstance(m, bool) or not math.isfinite(m) or not m > 0:
            raise ArchitectureError(f"search space: width_multipliers: {m!r} is not a finite number > 0")
    if len(set(width_multipliers)) != len(width_multipliers):
        raise ArchitectureError(f"search space: width_multipliers {list(width_multipliers)} must be distinct")
    for r in block_repeats:
        if not _is_int(r) or r < 1:
            raise ArchitectureError(f"search space: block_repeats: {r!r} is not an integer >= 1")
    if len(set(block_repeats)) != len(block_repeats):
        raise ArchitectureError(f"search space: block_repeats {list(block_repeats)} must be distinct")


def check_narrowest(
    block_fns: Sequence[str], levels: Sequence[int], scaling: Scaling, width_multipliers: Sequence[float]
) -> None:
    """Raises ArchitectureError if the smallest multiplier leaves a block, or its resampling, no channels.

    Checked for every block type and level of the space under its scaling, so
    every decision sequence decodes to a network that builds.
    """
    if not width_multipliers:
        return
    narrowest = min(width_multipliers)
    for fn in block_fns:
        for level in levels:
            where = f"search space: width_multipliers: {fn} blocks at L{level}"
            filters = block_width(fn, level, scaling.filter_size_scale, narrowest, where)
            channels = block_channels(fn, filters)
            if fn != MBCONV and resample_filters(channels, fn, scaling.resample_alpha) < 1:
                raise ArchitectureError(
                    f"{where}: width_multiplier {narrowest} leaves {filters} channels, which resample_alpha "
                    f"{scaling.resample_alpha} reduces to 0 when the block is resampled; raise the smallest multiplier"
                )


def resolve_topology(value: Any) -> TopologySpec | None:
    """A fixed topology in its stored form: block-spec tuples of the scale-permuted blocks.

    Args:
      value: None; ``"preset:NAME"`` (an architecture preset); the path of an
        architecture file (JSON schema or block specs), read once here; or
        block specs ``[[level, block_fn, [parent, parent], is_output], ...]``.
        A preset's or file's scaling and its blocks' own resources are not
        kept: only the levels, block types, parents and outputs.

    Raises:
      ArchitectureError: an unknown preset, an unreadable or invalid file, or
        malformed block specs.
    """
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        arch = _load_topology(os.fspath(value))
        return tuple((b.level, b.block_fn, tuple(b.parents), b.is_output) for b in arch.blocks)
    if not isinstance(value, (list, tuple)) or not value:
        raise ArchitectureError(
            "search space: fixed_topology must be preset:NAME, an architecture file or a non-empty list of "
            f"[level, block_fn, [parent, parent], is_output] blocks, got {value!r}"
        )
    specs = []
    for k, spec in enumerate(value):
        ok = isinstance(spec, (list, tuple)) and len(spec) == 4
        ok = ok and _is_int(spec[0]) and isinstance(spec[1], str) and isinstance(spec[3], bool)
        ok = ok and isinstance(spec[2], (list, tuple)) and len(spec[2]) == 2 and all(map(_is_int, spec[2]))
        if not ok:
            raise ArchitectureError(
                f"search space: fixed_topology entry {k}: expected [level, block_fn, [parent, parent], is_output], "
                f"got {spec!r}"
            )
        specs.append((spec[0], spec[1], tuple(sorted(spec[2])), spec[3]))
    return tuple(specs)


def _load_topology(spec: str) -> Architecture:
    from search_space.presets import resolve_architecture  # presets and files: resolved where a space is made

    try:
        return resolve_architecture(spec)
    except ArchitectureError as e:
        raise ArchitectureError(f"search space: fixed_topology: {e}") from None


def topology_blocks(specs: TopologySpec) -> tuple[BlockSpec, ...]:
    """The blocks of a stored fixed topology, with the default resources."""
    return tuple(BlockSpec(level, fn, tuple(parents), out) for level, fn, parents, out in specs)


def check_block_resources(
    arch: Architecture, width_multipliers: Sequence[float], block_repeats: Sequence[int], num_stem: int
) -> None:
    """Raises ArchitectureError unless every block's resources are among the space's choices.

    With an option off (no choices) a block must keep the default (1.0, 1).
    """
    for k, b in enumerate(arch.blocks):
        where = f"block {num_stem + k}"
        allowed = width_multipliers or (1.0,)
        if b.width_multiplier not in allowed:
            raise ArchitectureError(
                f"{where}: width_multiplier {b.width_multiplier} is not a choice of this space; allowed "
                f"{', '.join(map(str, allowed))}"
                + ("" if width_multipliers else " (the space does not search widths: set width_multipliers)")
            )
        allowed_repeats = block_repeats or (1,)
        if b.block_repeats not in allowed_repeats:
            raise ArchitectureError(
                f"{where}: block_repeats {b.block_repeats} is not a choice of this space; allowed "
                f"{', '.join(map(str, allowed_repeats))}"
                + ("" if block_repeats else " (the space does not search repeats: set block_repeats)")
            )


def check_fixed_topology(arch: Architecture, specs: TopologySpec, num_stem: int) -> None:
    """Raises ArchitectureError unless ``arch``'s blocks are the fixed topology's (resources aside)."""
    fixed = topology_blocks(specs)
    if len(arch.blocks) != len(fixed):
        raise ArchitectureError(
            f"blocks: this space keeps a fixed topology of {len(fixed)} blocks, got {len(arch.blocks)}"
        )
    for k, (b, f) in enumerate(zip(arch.blocks, fixed)):
        if b.topology() != f:
            raise ArchitectureError(
                f"block {num_stem + k}: this space keeps its topology fixed (L{f.level} {f.block_fn}, parents "
                f"{f.parents[0]}, {f.parents[1]}{', output' if f.is_output else ''}); got L{b.level} {b.block_fn}, "
                f"parents {b.parents[0]}, {b.parents[1]}{', output' if b.is_output else ''}"
            )

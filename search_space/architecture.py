"""Immutable value types for SpineNet architectures.

An architecture is a stem (the m candidate blocks every scale-permuted block
may take as a parent), an ordered list of scale-permuted blocks, and the
scaling that turns the topology into a concrete network (docs/search_space.md:
Meta-architecture, Published SpineNet-49, Model ids).

Parents index a running list: ``0..m-1`` are the stem candidates and
``m + k`` is the k-th scale-permuted block.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Sequence

from search_space.errors import ArchitectureError

BOTTLENECK = "bottleneck"
RESIDUAL = "residual"
# The two block types of the SpineNet paper, section 3.1 ("block adjustment").
BLOCK_FNS = (BOTTLENECK, RESIDUAL)
# SpineNet-Mobile's block (docs/search_space.md#spinenet-mobile): an inverted bottleneck
# (MBConv) with squeeze-excitation.
MBCONV = "mbconv"
MOBILE_BLOCK_FNS = (MBCONV,)
ALL_BLOCK_FNS = BLOCK_FNS + MOBILE_BLOCK_FNS

# A network's family follows from its block types: a SpineNet is built of bottleneck and
# residual blocks on a ResNet stem, a SpineNet-Mobile of MBConv blocks on its own stem.
SPINENET = "spinenet"
SPINENET_MOBILE = "spinenet_mobile"
FAMILY_BLOCK_FNS = {SPINENET: BLOCK_FNS, SPINENET_MOBILE: MOBILE_BLOCK_FNS}

# Output levels L3..L7, one block each (docs/search_space.md#meta-architecture).
DEFAULT_OUTPUT_LEVELS = (3, 4, 5, 6, 7)
DEFAULT_MIN_LEVEL = 2
DEFAULT_MAX_LEVEL = 7


@dataclasses.dataclass(frozen=True)
class StemBlock:
    """One stem candidate: an L2 bottleneck group in the reference model."""

    level: int = 2
    block_fn: str = BOTTLENECK


# The reference's Mobile stem is fixed (docs/search_space.md#spinenet-mobile): after a 3x3 stride-2
# conv, an MBConv group at L1 and one at L2, each a stem candidate.
MOBILE_STEM = (StemBlock(1, MBCONV), StemBlock(2, MBCONV))


def block_family(block_fn: str) -> str:
    """The family (``SPINENET`` or ``SPINENET_MOBILE``) a block type belongs to; SPINENET when unknown."""
    return SPINENET_MOBILE if block_fn in MOBILE_BLOCK_FNS else SPINENET


def default_stem(family: str) -> tuple[StemBlock, ...]:
    """The stem candidates of the family's reference model."""
    return MOBILE_STEM if family == SPINENET_MOBILE else (StemBlock(), StemBlock())


# docs/search_space.md#resource-distribution: a block's own share of the network's resources, on
# top of the scaling. The defaults leave a block exactly as the scaling alone builds it.
DEFAULT_WIDTH_MULTIPLIER = 1.0
DEFAULT_BLOCK_REPEATS = 1


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One scale-permuted block.

    Attributes:
      level: feature level; spatial size is input / 2**level.
      block_fn: ``"bottleneck"``, ``"residual"`` or ``"mbconv"``.
      parents: the two parents, indices into the running list (sorted on
        construction: fusion sums them, so their order carries no meaning).
      is_output: whether this block is the output of its level (P3..P7).
      width_multiplier: this block's width relative to its level's width under
        the scaling: ``int(base_filters * width_multiplier)`` base channels
        (``search_space.widths.block_width``; docs/search_space.md#resource-distribution).
      block_repeats: this block's group holds ``block_repeats *
        scaling.block_repeats`` blocks, chained (each takes the previous one's
        output); under the search's scalings (``scaling.block_repeats`` 1) the
        count itself.
    """

    level: int
    block_fn: str
    parents: tuple[int, int]
    is_output: bool = False
    width_multiplier: float = DEFAULT_WIDTH_MULTIPLIER
    block_repeats: int = DEFAULT_BLOCK_REPEATS

    @property
    def has_resources(self) -> bool:
        """Whether the block has its own width multiplier or repeat count (not the defaults)."""
        return (self.width_multiplier, self.block_repeats) != (DEFAULT_WIDTH_MULTIPLIER, DEFAULT_BLOCK_REPEATS)

    def topology(self) -> BlockSpec:
        """The same block with the default resources: what it is in the scale-permuted topology."""
        return BlockSpec(self.level, self.block_fn, self.parents, self.is_output)

    def __post_init__(self):
        parents = tuple(self.parents)
        if len(parents) == 2 and all(isinstance(p, int) and not isinstance(p, bool) for p in parents):
            object.__setattr__(self, "parents", tuple(sorted(parents)))
        else:
            object.__setattr__(self, "parents", parents)


@dataclasses.dataclass(frozen=True)
class Scaling:
    """How a topology becomes a concrete network (docs/search_space.md#model-ids).

    A SpineNet-Mobile resamples without an alpha step, so ``resample_alpha``
    changes nothing there (docs/search_space.md#spinenet-mobile).
    """

    filter_size_scale: float = 1.0
    resample_alpha: float = 0.5
    endpoints_num_filters: int = 256
    block_repeats: int = 1


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A complete SpineNet architecture: stem candidates, blocks and scaling."""

    blocks: tuple[BlockSpec, ...]
    stem: tuple[StemBlock, ...] = (StemBlock(), StemBlock())
    scaling: Scaling = Scaling()

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "stem", tuple(self.stem))

    @property
    def family(self) -> str:
        """``SPINENET`` or ``SPINENET_MOBILE``, from the stem's block type (validation checks the blocks agree)."""
        return block_family(self.stem[0].block_fn) if self.stem else SPINENET

    @property
    def num_stem(self) -> int:
        """Number of stem candidates m."""
        return len(self.stem)

    @property
    def num_blocks(self) -> int:
        """Number of scale-permuted blocks N."""
        return len(self.blocks)

    def with_scaling(self, scaling: Scaling) -> Architecture:
        """Returns the same topology with another scaling."""
        return dataclasses.replace(self, scaling=scaling)

    @property
    def has_resources(self) -> bool:
        """Whether some block has its own width multiplier or repeat count."""
        return any(b.has_resources for b in self.blocks)

    def topology(self) -> Architecture:
        """The same architecture with every block's resources at their defaults."""
        return dataclasses.replace(self, blocks=tuple(b.topology() for b in self.blocks))

    def repeats(self, block: int) -> int:
        """Blocks in the group of scale-permuted block ``block`` (0-based): its repeats times the scaling's."""
        return self.blocks[block].block_repeats * self.scaling.block_repeats

    def consumed(self) -> frozenset[int]:
        """Running-list indices that some block takes as a parent."""
        return frozenset(p for b in self.blocks for p in b.parents)

    def unconsumed_intermediate(self) -> tuple[int, ...]:
        """Running-list indices of intermediate blocks that nobody consumes.

        The reference model sums these into the output block of the same level.
        """
        used = self.consumed()
        m = self.num_stem
        return tuple(m + k for k, b in enumerate(self.blocks) if not b.is_output and (m + k) not in used)

    def canonical_order(self) -> tuple[int, ...]:
        """A build order that does not depend on how independent blocks were listed.

        Returns a permutation of ``range(num_blocks)``: blocks in a topological
        order in which, among the blocks ready to be built, the one with the
        smallest (is_output, level, block_fn, canonical parents) comes first;
        ties keep the listed order. Two architectures that list the same graph
        in different orders share this order's serialisation, so they share a
        fingerprint.
        """
        m = self.num_stem
        label = {i: i for i in range(m)}  # running index -> canonical index
        remaining = list(range(self.num_blocks))
        order = []
        while remaining:
            ready = [k for k in remaining if all(p in label for p in self.blocks[k].parents)]
            if not ready:  # a parent that is never built: keep the listed order
                ready = remaining[:1]

            def key(k: int):
                b = self.blocks[k]
                parents = tuple(sorted(label.get(p, -1) for p in b.parents))
                return (b.is_output, b.level, b.block_fn, parents, b.width_multiplier, b.block_repeats, k)

            best = min(ready, key=key)
            label[m + best] = m + len(order)
            order.append(best)
            remaining.remove(best)
        return tuple(order)

    def canonical(self) -> Architecture:
        """The same network with its blocks in canonical build order."""
        order = self.canonical_order()
        m = self.num_stem
        relabel = {i: i for i in range(m)}
        for new, old in enumerate(order):
            relabel[m + old] = m + new
        blocks = tuple(
            dataclasses.replace(self.blocks[old], parents=tuple(relabel.get(p, p) for p in self.blocks[old].parents))
            for old in order
        )
        return dataclasses.replace(self, blocks=blocks)

    def fingerprint(self, include_scaling: bool = True) -> str:
        """A short hex digest that identifies the network this architecture builds.

        Equal fingerprints mean the same blocks, connections and (optionally)
        scaling, whatever order independent blocks were listed in.

        Args:
          include_scaling: whether the scaling is part of the identity.

        Returns:
          16 hex characters.
        """
        canon = self.canonical()
        payload = {
            "stem": [[s.level, s.block_fn] for s in canon.stem],
            # A block's resources join its row only when it has its own, so every architecture
            # without them keeps the fingerprint it had before they existed.
            "blocks": [
                [b.level, b.block_fn, list(b.parents), b.is_output]
                + ([b.width_multiplier, b.block_repeats] if b.has_resources else [])
                for b in canon.blocks
            ],
        }
        if include_scaling:
            payload["scaling"] = dataclasses.asdict(canon.scaling)
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_scaling(scaling: Scaling) -> None:
    """Raises ArchitectureError unless every scaling field is in range."""
    if not _is_number(scaling.filter_size_scale) or not scaling.filter_size_scale > 0:
        raise ArchitectureError(f"scaling.filter_size_scale must be a number > 0, got {scaling.filter_size_scale!r}")
    if not _is_number(scaling.resample_alpha) or not scaling.resample_alpha > 0:
        raise ArchitectureError(f"scaling.resample_alpha must be a number > 0, got {scaling.resample_alpha!r}")
    if not _is_int(scaling.endpoints_num_filters) or scaling.endpoints_num_filters < 1:
        raise ArchitectureError(
            f"scaling.endpoints_num_filters must be an integer >= 1, got {scaling.endpoints_num_filters!r}"
        )
    if not _is_int(scaling.block_repeats) or scaling.block_repeats < 1:
        raise ArchitectureError(f"scaling.block_repeats must be an integer >= 1, got {scaling.block_repeats!r}")


def validate_block_resources(block: BlockSpec, where: str) -> None:
    """Raises ArchitectureError unless the block's width multiplier and repeat count are in range."""
    m = block.width_multiplier
    if not _is_number(m) or not math.isfinite(m) or not m > 0:
        raise ArchitectureError(f"{where}: width_multiplier must be a finite number > 0, got {m!r}")
    if not _is_int(block.block_repeats) or block.block_repeats < 1:
        raise ArchitectureError(f"{where}: block_repeats must be an integer >= 1, got {block.block_repeats!r}")


def validate_architecture(
    arch: Architecture,
    *,
    min_level: int = DEFAULT_MIN_LEVEL,
    max_level: int = DEFAULT_MAX_LEVEL,
    output_levels: Sequence[int] = DEFAULT_OUTPUT_LEVELS,
    block_fns: Iterable[str] = ALL_BLOCK_FNS,
) -> None:
    """Checks the rules every buildable SpineNet obeys, whatever the search space.

    Args:
      arch: the architecture.
      min_level: lowest level a block may have.
      max_level: highest level a block may have.
      output_levels: the levels that need exactly one output block each.
      block_fns: the block types allowed; an architecture's blocks must also be
        of one family (``FAMILY_BLOCK_FNS``), and a SpineNet-Mobile has the
        reference's fixed stem (``MOBILE_STEM``) and no block repeats.

    Raises:
      ArchitectureError: naming the block, the field and the allowed values.
    """
    block_fns = tuple(block_fns)
    if not isinstance(arch, Architecture):
        raise ArchitectureError(f"expected an Architecture, got {type(arch).__name__}")
    m = arch.num_stem
    if m < 2:
        raise ArchitectureError(f"stem: needs at least 2 candidates (every block has two parents), got {m}")
    for i, s in enumerate(arch.stem):
        if not isinstance(s, StemBlock):
            raise ArchitectureError(f"stem {i}: expected a StemBlock, got {type(s).__name__}")
    family = arch.family
    if family == SPINENET_MOBILE and arch.stem != MOBILE_STEM:
        got = [(s.level, s.block_fn) for s in arch.stem]
        raise ArchitectureError(
            f"stem: a SpineNet-Mobile has the reference's fixed stem, an mbconv candidate at L1 and one at L2; got {got}"
        )
    for i, s in enumerate(arch.stem):
        if family == SPINENET_MOBILE:
            break  # checked whole above
        if not _is_int(s.level) or not min_level <= s.level <= max_level:
            raise ArchitectureError(f"stem {i}: level {s.level!r} is out of range; allowed {min_level}..{max_level}")
        if s.block_fn not in block_fns:
            raise ArchitectureError(f"stem {i}: block_fn {s.block_fn!r} is unknown; allowed {', '.join(block_fns)}")
        if s.block_fn not in FAMILY_BLOCK_FNS[family]:
            raise ArchitectureError(
                f"stem {i}: block_fn {s.block_fn!r} does not go with a {family} stem; "
                f"allowed {', '.join(FAMILY_BLOCK_FNS[family])}"
            )
    if not arch.blocks:
        raise ArchitectureError("blocks: an architecture needs at least one block per output level")
    for k, b in enumerate(arch.blocks):
        idx = m + k
        where = f"block {idx}"
        if not isinstance(b, BlockSpec):
            raise ArchitectureError(f"{where}: expected a BlockSpec, got {type(b).__name__}")
        if not _is_int(b.level) or not min_level <= b.level <= max_level:
            raise ArchitectureError(f"{where}: level {b.level!r} is out of range; allowed {min_level}..{max_level}")
        if b.block_fn not in block_fns:
            raise ArchitectureError(f"{where}: block_fn {b.block_fn!r} is unknown; allowed {', '.join(block_fns)}")
        if b.block_fn not in FAMILY_BLOCK_FNS[family]:
            raise ArchitectureError(
                f"{where}: block_fn {b.block_fn!r} does not go with a {family} stem ({arch.stem[0].block_fn}); "
                f"allowed {', '.join(FAMILY_BLOCK_FNS[family])} (a network is a SpineNet or a SpineNet-Mobile throughout)"
            )
        if not isinstance(b.is_output, bool):
            raise ArchitectureError(f"{where}: is_output must be true or false, got {b.is_output!r}")
        if len(b.parents) != 2:
            raise ArchitectureError(f"{where}: needs exactly 2 parents, got {len(b.parents)}")
        for p in b.parents:
            if not _is_int(p):
                raise ArchitectureError(f"{where}: parent {p!r} is not an integer; allowed 0..{idx - 1}")
            if p < 0 or p >= idx:
                state = "is not built yet" if p >= idx else "is out of range"
                raise ArchitectureError(f"{where}: parent {p} {state}; allowed 0..{idx - 1}")
        if b.parents[0] == b.parents[1]:
            raise ArchitectureError(f"{where}: parent {b.parents[0]} is repeated; the two parents must differ")
        validate_block_resources(b, where)
    outputs = [(m + k, b.level) for k, b in enumerate(arch.blocks) if b.is_output]
    out_levels = sorted(level for _, level in outputs)
    if out_levels != sorted(output_levels):
        raise ArchitectureError(
            f"outputs: need exactly one output block at each of levels {list(output_levels)}, "
            f"got output levels {out_levels} (blocks {[i for i, _ in outputs]})"
        )
    validate_scaling(arch.scaling)
    if family == SPINENET_MOBILE and arch.scaling.block_repeats != 1:
        # The reference applies each repeat of an MBConv group to the group's input, so only one
        # block per group takes effect there: the scaling, which stands for the reference's models,
        # keeps 1. A block's own block_repeats (resource distribution) are chained instead.
        raise ArchitectureError(
            f"scaling.block_repeats is {arch.scaling.block_repeats}; a SpineNet-Mobile has 1 block per group in "
            "its scaling, as the reference (a block's own block_repeats repeat it, chained)"
        )

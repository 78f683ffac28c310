"""The SpineNet search space (paper section 3.1) as a frozen, checkable definition."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from search_space.architecture import (
    ALL_BLOCK_FNS,
    BLOCK_FNS,
    BOTTLENECK,
    DEFAULT_OUTPUT_LEVELS,
    MOBILE_BLOCK_FNS,
    MOBILE_STEM,
    SPINENET_MOBILE,
    Architecture,
    BlockSpec,
    Scaling,
    StemBlock,
    block_family,
    validate_architecture,
)
from search_space.errors import ArchitectureError
from search_space.resources import (
    TopologySpec,
    check_block_resources,
    check_choices,
    check_fixed_topology,
    check_narrowest,
    resolve_topology,
    topology_blocks,
)

# Paper Table 1, SpineNet-49: scale-permuted blocks {L2:1, L3:2, L4:4, L5:4,
# L6:2, L7:2}; less the five outputs (one each at L3..L7) this leaves the
# intermediate allocation below.
SPINENET49_INTERMEDIATE_ALLOCATION = ((2, 1), (3, 1), (4, 3), (5, 3), (6, 1), (7, 1))
# Paper section 3.1, block adjustment: intermediate blocks shift level by -1..+2.
LEVEL_SHIFTS = (-1, 0, 1, 2)
# docs/search_space.md#spinenet-mobile: the published SpineNet-Mobile has SpineNet-49's
# intermediate blocks plus a first L2 block that fuses the two stem candidates.
SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION = ((2, 2), (3, 1), (4, 3), (5, 3), (6, 1), (7, 1))
# Paper section 5.1: in the proxy search intermediate blocks take parents
# among the last 5 built blocks (Google's public re-implementation uses 4).
DEFAULT_PARENT_WINDOW = 5


def format_allocation(allocation: Sequence[tuple[int, int]]) -> str:
    """``((2, 1), (4, 3))`` -> ``"L2:1, L4:3"``."""
    return ", ".join(f"L{level}:{count}" for level, count in allocation)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A SpineNet search space.

    Attributes:
      level_allocation: (level, count) pairs: the base levels of the
        intermediate blocks that the scale permutation orders.
      output_levels: one output block per level, permuted among themselves.
      num_stem: m, the number of stem candidates (L2 bottleneck groups).
      stem_level: level of every stem candidate (of the last one for a
        SpineNet-Mobile, whose stem is fixed: L1 and L2 MBConv groups).
      parent_window: intermediate blocks take parents among the last
        ``parent_window`` entries of the running list; None = unrestricted.
        Output blocks are never restricted.
      level_shifts: the block-adjustment level shifts of intermediate blocks;
        ``(0,)`` switches level adjustment off.
      block_fns: block types a block may pick; one type switches the choice off.
        They are of one family: ``("mbconv",)`` makes a SpineNet-Mobile space,
        with the Mobile stem.
      min_level: lowest level a block may end at.
      max_level: highest level a block may end at.
      scaling: the scaling attached to decoded architectures.
      width_multipliers: resource distribution (docs/search_space.md#resource-distribution):
        the choices of every block's width multiplier; empty = not searched
        (every block 1.0).
      block_repeats: the choices of every block's repeat count (times
        ``scaling.block_repeats``); empty = not searched (every block 1).
      fixed_topology: None, or the scale-permuted blocks every architecture
        keeps, so that only the resources are searched: given as
        ``"preset:NAME"``, an architecture file, or block specs
        ``[[level, block_fn, [parent, parent], is_output], ...]``, and kept as
        block-spec tuples (``search_space.resources.resolve_topology``). It
        must be a member of the space.
    """

    level_allocation: tuple[tuple[int, int], ...] = SPINENET49_INTERMEDIATE_ALLOCATION
    output_levels: tuple[int, ...] = DEFAULT_OUTPUT_LEVELS
    num_stem: int = 2
    stem_level: int = 2
    parent_window: int | None = DEFAULT_PARENT_WINDOW
    level_shifts: tuple[int, ...] = LEVEL_SHIFTS
    block_fns: tuple[str, ...] = BLOCK_FNS
    min_level: int = 2
    max_level: int = 7
    scaling: Scaling = Scaling()
    width_multipliers: tuple[float, ...] = ()
    block_repeats: tuple[int, ...] = ()
    fixed_topology: TopologySpec | str | None = None

    def __post_init__(self):
        object.__setattr__(self, "level_allocation", tuple(tuple(p) for p in self.level_allocation))
        for name in ("output_levels", "level_shifts", "block_fns", "width_multipliers", "block_repeats"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        # Multipliers are floats, so a decoded block's and a file's compare and serialise alike.
        multipliers = tuple(float(m) if type(m) is int else m for m in self.width_multipliers)
        object.__setattr__(self, "width_multipliers", multipliers)
        object.__setattr__(self, "fixed_topology", resolve_topology(self.fixed_topology))
        self.validate()

    def definition(self) -> dict:
        """The definition as plain data, the resource options left out while they are off.

        What identifies the space to a controller state: a space without
        resource options has the definition it had before they existed, so
        saved states stay valid.
        """
        out = dataclasses.asdict(self)
        for name, off in (("width_multipliers", ()), ("block_repeats", ()), ("fixed_topology", None)):
            if getattr(self, name) == off:
                del out[name]
        return out

    # ----- the definition itself -------------------------------------------------

    def validate(self) -> None:
        """Raises ArchitectureError if the definition cannot describe any architecture."""

        def bad(msg: str):
            raise ArchitectureError(f"search space: {msg}")

        if not 1 <= self.min_level <= self.max_level:
            bad(f"min_level {self.min_level} and max_level {self.max_level} must satisfy 1 <= min <= max")
        for pair in self.level_allocation:
            if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
                bad(f"level_allocation entry {pair!r} must be a (level, count) pair of integers")
            level, count = pair
            if not self.min_level <= level <= self.max_level:
                bad(f"level_allocation level {level} is out of range; allowed {self.min_level}..{self.max_level}")
            if count < 0:
                bad(f"level_allocation count for L{level} is {count}; must be >= 0")
        levels = [lv for lv, _ in self.level_allocation]
        if len(set(levels)) != len(levels):
            bad(f"level_allocation lists a level twice: {format_allocation(self.level_allocation)}")
        if not self.output_levels or len(set(self.output_levels)) != len(self.output_levels):
            bad(f"output_levels {list(self.output_levels)} must be distinct and non-empty")
        for level in self.output_levels:
            if not self.min_level <= level <= self.max_level:
                bad(f"output level {level} is out of range; allowed {self.min_level}..{self.max_level}")
        if self.num_stem < 2:
            bad(f"num_stem is {self.num_stem}; every block has two parents, so at least 2 are needed")
        if not self.min_level <= self.stem_level <= self.max_level:
            bad(f"stem_level {self.stem_level} is out of range; allowed {self.min_level}..{self.max_level}")
        if self.parent_window is not None and self.parent_window < 2:
            bad(f"parent_window is {self.parent_window}; a block needs 2 parents, so use >= 2 or None")
        if not self.level_shifts or len(set(self.level_shifts)) != len(self.level_shifts):
            bad(f"level_shifts {list(self.level_shifts)} must be distinct and non-empty")
        if not self.block_fns or len(set(self.block_fns)) != len(self.block_fns):
            bad(f"block_fns {list(self.block_fns)} must be distinct and non-empty")
        for fn in self.block_fns:
            if fn not in ALL_BLOCK_FNS:
                bad(f"block_fn {fn!r} is unknown; allowed {', '.join(ALL_BLOCK_FNS)}")
        if len({block_family(fn) for fn in self.block_fns}) > 1:
            bad(
                f"block_fns {list(self.block_fns)} mix families; a space is SpineNet ({', '.join(BLOCK_FNS)}) "
                f"or SpineNet-Mobile ({', '.join(MOBILE_BLOCK_FNS)})"
            )
        if self.family == SPINENET_MOBILE and (self.num_stem, self.stem_level) != (2, 2):
            bad(
                f"num_stem {self.num_stem} and stem_level {self.stem_level}: a SpineNet-Mobile space has the "
                "reference's fixed stem, 2 candidates ending at L2"
            )
        for level, count in self.level_allocation:
            if count and not self.valid_shifts(level):
                bad(
                    f"no level shift in {list(self.level_shifts)} keeps L{level} within L{self.min_level}..L{self.max_level}"
                )
        check_choices(self.width_multipliers, self.block_repeats)
        check_narrowest(self.block_fns, range(self.min_level, self.max_level + 1), self.scaling, self.width_multipliers)
        if self.fixed_topology is not None:
            if len(self.width_multipliers) < 2 and len(self.block_repeats) < 2:
                bad(
                    "fixed_topology leaves nothing to search: give width_multipliers or block_repeats "
                    "at least 2 choices"
                )
            try:
                self._validate_topology(Architecture(topology_blocks(self.fixed_topology), self.stem(), self.scaling))
            except ArchitectureError as e:
                bad(f"fixed_topology is not a member of the space: {e}")

    # ----- derived quantities ---------------------------------------------------

    @property
    def family(self) -> str:
        """``"spinenet"`` or ``"spinenet_mobile"``, from the block types."""
        return block_family(self.block_fns[0])

    @property
    def num_intermediate(self) -> int:
        """Number of intermediate (non-output) scale-permuted blocks."""
        return sum(count for _, count in self.level_allocation)

    @property
    def num_outputs(self) -> int:
        """Number of output blocks (5 for L3..L7)."""
        return len(self.output_levels)

    @property
    def num_blocks(self) -> int:
        """N, the number of scale-permuted blocks."""
        return self.num_intermediate + self.num_outputs

    @property
    def base_levels(self) -> tuple[int, ...]:
        """Distinct allocation levels with a positive count, ascending."""
        return tuple(sorted(level for level, count in self.level_allocation if count > 0))

    def allocation_counts(self) -> dict[int, int]:
        """Level -> count, for levels with a positive count."""
        return {level: count for level, count in self.level_allocation if count > 0}

    def valid_shifts(self, base_level: int) -> tuple[int, ...]:
        """The level shifts that keep ``base_level`` within the level range."""
        return tuple(s for s in self.level_shifts if self.min_level <= base_level + s <= self.max_level)

    def window_start(self, index: int) -> int:
        """Lowest parent index an intermediate block at running ``index`` may take."""
        if self.parent_window is None:
            return 0
        return max(0, index - self.parent_window)

    @property
    def searches_resources(self) -> bool:
        """Whether the space decides a width multiplier or a repeat count per block."""
        return len(self.width_multipliers) > 1 or len(self.block_repeats) > 1

    def fixed_blocks(self) -> tuple[BlockSpec, ...] | None:
        """The fixed topology's blocks (default resources), or None when the topology is searched."""
        return None if self.fixed_topology is None else topology_blocks(self.fixed_topology)

    def stem(self) -> tuple[StemBlock, ...]:
        """The stem candidates of every architecture in this space."""
        if self.family == SPINENET_MOBILE:
            return MOBILE_STEM
        return tuple(StemBlock(self.stem_level, BOTTLENECK) for _ in range(self.num_stem))

    # ----- membership ------------------------------------------------------------

    def validate_architecture(self, arch: Architecture) -> None:
        """Raises ArchitectureError unless ``arch`` is a member of this space.

        Membership: the generic SpineNet rules, then this space's stem, block
        count, intermediate-then-output order, a level allocation reachable
        with the allowed shifts, and the parent window; the fixed topology if
        the space keeps one; every block's resources among the space's choices
        (the defaults where an option is off). The scaling is free.
        """
        self._validate_topology(arch)
        if self.fixed_topology is not None:
            check_fixed_topology(arch, self.fixed_topology, self.num_stem)
        check_block_resources(arch, self.width_multipliers, self.block_repeats, self.num_stem)

    def _validate_topology(self, arch: Architecture) -> None:
        validate_architecture(
            arch,
            min_level=self.min_level,
            max_level=self.max_level,
            output_levels=self.output_levels,
            block_fns=self.block_fns,
        )
        if arch.stem != self.stem():
            got = [(s.level, s.block_fn) for s in arch.stem]
            if self.family == SPINENET_MOBILE:
                raise ArchitectureError(f"stem: this space has the Mobile stem (mbconv at L1 and L2), got {got}")
            raise ArchitectureError(
                f"stem: this space has {self.num_stem} stem candidates at L{self.stem_level} (bottleneck), got {got}"
            )
        if arch.num_blocks != self.num_blocks:
            raise ArchitectureError(
                f"blocks: this space has {self.num_blocks} blocks ({self.num_intermediate} intermediate + "
                f"{self.num_outputs} outputs), got {arch.num_blocks}"
            )
        m = self.num_stem
        for k, b in enumerate(arch.blocks):
            idx = m + k
            should_be_output = k >= self.num_intermediate
            if b.is_output != should_be_output:
                kind = "an output" if should_be_output else "an intermediate"
                raise ArchitectureError(
                    f"block {idx}: must be {kind} block; in this space blocks {m}..{m + self.num_intermediate - 1} "
                    f"are intermediate and the last {self.num_outputs} are outputs"
                )
            if not b.is_output and self.parent_window is not None:
                lo = self.window_start(idx)
                for p in b.parents:
                    if p < lo:
                        raise ArchitectureError(
                            f"block {idx}: parent {p} is outside the parent window of {self.parent_window}; "
                            f"allowed {lo}..{idx - 1}"
                        )
        self.assign_base_levels(arch)

    def contains(self, arch: Architecture) -> bool:
        """Whether ``arch`` is a member of this space."""
        try:
            self.validate_architecture(arch)
        except ArchitectureError:
            return False
        return True

    def assign_base_levels(self, arch: Architecture) -> tuple[int, ...]:
        """Finds which allocation level each intermediate block was shifted from.

        Several assignments may exist; this returns the canonical one: in
        build order, each block takes the smallest shift (0, then -1, +1, +2)
        that still lets the remaining blocks be matched.

        Returns:
          One base level per intermediate block.

        Raises:
          ArchitectureError: naming a block whose level cannot be reached.
        """
        m = self.num_stem
        levels = [b.level for b in arch.blocks[: self.num_intermediate]]
        counts = self.allocation_counts()
        preference = sorted(self.level_shifts, key=lambda s: (abs(s), s))
        if not _matchable(levels, counts, self.level_shifts):
            culprit = _first_unmatched(levels, counts, self.level_shifts)
            raise ArchitectureError(
                f"block {m + culprit}: level {levels[culprit]} cannot be reached from the level allocation "
                f"({format_allocation(self.level_allocation)}) with level shifts {list(self.level_shifts)} "
                f"once the other intermediate blocks take theirs"
            )
        bases = []
        for k, level in enumerate(levels):
            for shift in preference:
                base = level - shift
                if counts.get(base, 0) <= 0:
                    continue
                counts[base] -= 1
                if _matchable(levels[k + 1 :], counts, self.level_shifts):
                    bases.append(base)
                    break
                counts[base] += 1
        return tuple(bases)


def _matchable(levels: Sequence[int], counts: dict[int, int], shifts: Sequence[int]) -> bool:
    """Whether every level can take a distinct base unit within ``shifts``."""
    return _max_matching(levels, counts, shifts)[0] == len(levels)


def _first_unmatched(levels: Sequence[int], counts: dict[int, int], shifts: Sequence[int]) -> int:
    return _max_matching(levels, counts, shifts)[1]


def _max_matching(levels: Sequence[int], counts: dict[int, int], shifts: Sequence[int]) -> tuple[int, int]:
    """Bipartite matching of blocks to base-level units (augmenting paths).

    Returns:
      (size of a maximum matching, index of the first unmatched block or -1).
    """
    units = [base for base, count in sorted(counts.items()) for _ in range(count)]
    owner = [-1] * len(units)

    def augment(block: int, seen: set[int]) -> bool:
        for u, base in enumerate(units):
            if u in seen or levels[block] - base not in shifts:
                continue
            seen.add(u)
            if owner[u] == -1 or augment(owner[u], seen):
                owner[u] = block
                return True
        return False

    size, first = 0, -1
    for block in range(len(levels)):
        if augment(block, set()):
            size += 1
        elif first == -1:
            first = block
    return size, first

"""Architecture <-> a flat sequence of categorical decisions.

This is all a search algorithm sees of the space. Blocks are decided in
build order; for each block, in this order:

- ``level``: an intermediate block picks one of the allocation levels that
  are still left (the scale permutation); an output block picks one of the
  output levels still left;
- ``level_shift``: intermediate blocks only, one of the level shifts that
  keeps the level in range (block adjustment);
- ``block_fn``: one of the block types (block adjustment);
- ``parent_a`` and ``parent_b``: the two parents, ``parent_a < parent_b``,
  among the entries already built (within the window for intermediate blocks);
- ``width_multiplier`` and ``block_repeats``: the block's resources, one of
  the space's choices each, only in a space that searches them
  (docs/search_space.md#resource-distribution).

A space with a fixed topology has only the resource decisions: the blocks'
levels, types and parents are the topology's.

A decision point with a single possible choice in every case (e.g. the shift
when shifts are switched off) is left out. Each point has a fixed number of
choices; which of them are valid depends on the earlier decisions and is given
as a mask. Every sequence that respects the masks decodes to a member of the
space, and every member encodes; ``decode(encode(a)) == a``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from search_space.architecture import Architecture, BlockSpec
from search_space.errors import ArchitectureError
from search_space.space import SearchSpace

LEVEL = "level"
LEVEL_SHIFT = "level_shift"
BLOCK_FN = "block_fn"
PARENT_A = "parent_a"
PARENT_B = "parent_b"
WIDTH_MULTIPLIER = "width_multiplier"
BLOCK_REPEATS = "block_repeats"
KINDS = (LEVEL, LEVEL_SHIFT, BLOCK_FN, PARENT_A, PARENT_B, WIDTH_MULTIPLIER, BLOCK_REPEATS)
# Decisions that take any of their choices, whatever came before.
_FREE_KINDS = (BLOCK_FN, WIDTH_MULTIPLIER, BLOCK_REPEATS)


@dataclasses.dataclass(frozen=True)
class DecisionPoint:
    """One categorical decision.

    Attributes:
      index: position in the decision sequence.
      block: running-list index of the block it belongs to.
      kind: one of ``KINDS``.
      num_choices: size of the categorical (fixed, whatever came before).
      values: what each choice means (a level, a shift, a block type, a
        parent index, a width multiplier, a repeat count).
      hint: a human-readable description.
    """

    index: int
    block: int
    kind: str
    num_choices: int
    values: tuple
    hint: str


class DecisionCursor:
    """Walks the decision sequence one choice at a time, tracking validity.

    Use ``mask()`` for the valid choices of the current point, then
    ``choose(c)``. When ``done``, ``architecture()`` returns the decoded
    architecture. Controllers sample with it; decoding replays with it.
    """

    def __init__(self, encoding: DecisionEncoding):
        self._enc = encoding
        self._space = encoding.space
        self._pos = 0
        self._remaining = self._space.allocation_counts()
        self._remaining_out = list(self._space.output_levels)
        self._blocks: list[BlockSpec] = []
        self._current: dict = {}
        self.decisions: list[int] = []
        self._advance()

    @property
    def done(self) -> bool:
        """Whether every decision has been made."""
        return self._pos == len(self._enc.points)

    @property
    def point(self) -> DecisionPoint:
        """The decision point to be decided next."""
        return self._enc.points[self._pos]

    def _is_intermediate(self, block: int) -> bool:
        return block - self._space.num_stem < self._space.num_intermediate

    def mask(self) -> tuple[bool, ...]:
        """Valid choices of the current point."""
        p = self.point
        space = self._space
        intermediate = self._is_intermediate(p.block)
        if p.kind == LEVEL:
            if intermediate:
                return tuple(self._remaining.get(v, 0) > 0 for v in p.values)
            return tuple(v in self._remaining_out for v in p.values)
        if p.kind == LEVEL_SHIFT:
            base = self._current["base"]
            return tuple(space.min_level <= base + s <= space.max_level for s in p.values)
        if p.kind in _FREE_KINDS:
            return (True,) * p.num_choices
        lo = space.window_start(p.block) if intermediate else 0
        if p.kind == PARENT_A:
            return tuple(lo <= v < p.block - 1 for v in p.values)
        a = self._current["parents"][0]
        return tuple(v > a for v in p.values)

    def choose(self, choice: int) -> None:
        """Makes the current decision.

        Raises:
          ArchitectureError: if ``choice`` is out of range or masked out.
        """
        p = self.point
        mask = self.mask()
        if (
            not isinstance(choice, int)
            or isinstance(choice, bool)
            or not 0 <= choice < p.num_choices
            or not mask[choice]
        ):
            allowed = [i for i, ok in enumerate(mask) if ok]
            raise ArchitectureError(
                f"decision {p.index} ({p.hint}): choice {choice!r} is not allowed; allowed {allowed}"
            )
        value = p.values[choice]
        cur = self._current
        if p.kind == LEVEL:
            if self._is_intermediate(p.block):
                cur["base"] = value
                self._remaining[value] -= 1
            else:
                cur["level"] = value
                self._remaining_out.remove(value)
        elif p.kind == LEVEL_SHIFT:
            cur["level"] = cur["base"] + value
        elif p.kind in (BLOCK_FN, WIDTH_MULTIPLIER, BLOCK_REPEATS):
            cur[p.kind] = value
        elif p.kind == PARENT_A:
            cur["parents"] = [value]
        else:
            cur["parents"].append(value)
        self.decisions.append(choice)
        self._pos += 1
        self._advance()

    def _advance(self) -> None:
        """Completes every block that has no decision left before the next point."""
        space = self._space
        m = space.num_stem
        upto = m + space.num_blocks if self.done else self.point.block
        while m + len(self._blocks) < upto:
            self._finish_block(m + len(self._blocks))
        if not self.done and not self._current:
            self._start_block(self.point.block)

    def _start_block(self, block: int) -> None:
        """Fills in the choices that are forced for ``block`` (all but its resources in a fixed topology)."""
        space, cur = self._space, self._current
        cur["block"] = block
        fixed = self._enc.fixed_blocks
        if fixed is not None:
            spec = fixed[block - space.num_stem]
            cur.update(level=spec.level, block_fn=spec.block_fn, parents=list(spec.parents))
        elif self._is_intermediate(block):
            if len(space.base_levels) == 1:
                cur["base"] = space.base_levels[0]
                self._remaining[cur["base"]] -= 1
        elif len(space.output_levels) == 1:
            cur["level"] = self._remaining_out.pop(0)

    def _finish_block(self, block: int) -> None:
        if self._current.get("block") != block:
            self._current = {}
            self._start_block(block)
        cur, space = self._current, self._space
        intermediate = self._is_intermediate(block)
        if "level" not in cur:  # no shift decision point: the base level stands
            cur["level"] = cur["base"]
        block_fn = cur.get("block_fn", space.block_fns[0])
        parents = cur.get("parents")
        if parents is None:  # only one pair is possible
            lo = space.window_start(block) if intermediate else 0
            parents = [lo, lo + 1]
        width = cur.get(WIDTH_MULTIPLIER, space.width_multipliers[0] if space.width_multipliers else 1.0)
        repeats = cur.get(BLOCK_REPEATS, space.block_repeats[0] if space.block_repeats else 1)
        self._blocks.append(BlockSpec(cur["level"], block_fn, tuple(parents), not intermediate, width, repeats))
        self._current = {}

    def architecture(self) -> Architecture:
        """The architecture the decisions describe.

        Raises:
          ArchitectureError: if decisions are still missing.
        """
        if not self.done:
            raise ArchitectureError(f"decisions: got {self._pos}, the encoding needs {len(self._enc.points)}")
        return Architecture(blocks=tuple(self._blocks), stem=self._space.stem(), scaling=self._space.scaling)


class DecisionEncoding:
    """The decision sequence of a search space: its points, decoding and encoding."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self.fixed_blocks = space.fixed_blocks()
        self.points: tuple[DecisionPoint, ...] = self._build_points()

    def _build_points(self) -> tuple[DecisionPoint, ...]:
        space = self.space
        m = space.num_stem
        points: list[DecisionPoint] = []

        def add(block: int, kind: str, values: Sequence, hint: str):
            # A point whose choice is always forced carries no information.
            if len(values) > 1:
                points.append(DecisionPoint(len(points), block, kind, len(values), tuple(values), hint))

        for k in range(space.num_blocks):
            idx = m + k
            intermediate = k < space.num_intermediate
            role = "intermediate" if intermediate else "output"
            if self.fixed_blocks is None:
                if intermediate:
                    add(idx, LEVEL, space.base_levels, f"block {idx} ({role}): base level")
                    add(idx, LEVEL_SHIFT, space.level_shifts, f"block {idx} ({role}): level shift")
                else:
                    add(idx, LEVEL, space.output_levels, f"block {idx} ({role}): output level")
                add(idx, BLOCK_FN, space.block_fns, f"block {idx} ({role}): block type")
                # Parent pairs: when only one pair is possible, both points are forced.
                lo = space.window_start(idx) if intermediate else 0
                if idx - lo > 2:
                    add(idx, PARENT_A, range(idx), f"block {idx} ({role}): first parent")
                    add(idx, PARENT_B, range(idx), f"block {idx} ({role}): second parent")
            add(idx, WIDTH_MULTIPLIER, space.width_multipliers, f"block {idx} ({role}): width multiplier")
            add(idx, BLOCK_REPEATS, space.block_repeats, f"block {idx} ({role}): repeats")
        return tuple(points)

    @property
    def num_choices(self) -> tuple[int, ...]:
        """Number of choices of every point, in order."""
        return tuple(p.num_choices for p in self.points)

    def __len__(self) -> int:
        return len(self.points)

    def cursor(self) -> DecisionCursor:
        """A fresh cursor at the first decision."""
        return DecisionCursor(self)

    def decode(self, decisions: Sequence[int]) -> Architecture:
        """Decodes a full decision sequence.

        Raises:
          ArchitectureError: wrong length, or a choice that is out of range or
            masked out given the earlier decisions.
        """
        decisions = list(decisions)
        if len(decisions) != len(self.points):
            raise ArchitectureError(f"decisions: got {len(decisions)}, the encoding needs {len(self.points)}")
        cursor = self.cursor()
        for choice in decisions:
            cursor.choose(choice)
        return cursor.architecture()

    def masks(self, decisions: Sequence[int]) -> list[tuple[bool, ...]]:
        """The valid-choice mask of every point along a decision sequence.

        Raises:
          ArchitectureError: as ``decode``.
        """
        if len(decisions) != len(self.points):
            raise ArchitectureError(f"decisions: got {len(decisions)}, the encoding needs {len(self.points)}")
        cursor = self.cursor()
        masks = []
        for choice in decisions:
            masks.append(cursor.mask())
            cursor.choose(choice)
        return masks

    def encode(self, arch: Architecture) -> list[int]:
        """Encodes a member of the space.

        The scaling is not encoded: decoding attaches the space's scaling.

        Raises:
          ArchitectureError: if ``arch`` is not a member of the space.
        """
        space = self.space
        space.validate_architecture(arch)
        bases = space.assign_base_levels(arch) if self.fixed_blocks is None else ()
        m = space.num_stem
        decisions = []
        for p in self.points:
            k = p.block - m
            block = arch.blocks[k]
            intermediate = k < space.num_intermediate
            if p.kind == LEVEL:
                value = bases[k] if intermediate else block.level
            elif p.kind == LEVEL_SHIFT:
                value = block.level - bases[k]
            elif p.kind in (BLOCK_FN, WIDTH_MULTIPLIER, BLOCK_REPEATS):
                value = getattr(block, p.kind)
            elif p.kind == PARENT_A:
                value = block.parents[0]
            else:
                value = block.parents[1]
            decisions.append(p.values.index(value))
        return decisions

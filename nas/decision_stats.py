"""What a search algorithm decides, as distributions over the choices: the heatmaps of the report.

From a set of decision sequences (drawn from a policy, or the proposals an
algorithm made), for each kind of decision: the share of each choice at each
decision point (the base level, level shift and block type of every block in
build order, and its width multiplier and repeats where the space searches
them), and where the blocks take their parents from, by the level of
the parent (rows: the intermediate blocks of each level, and each output
block), which is how a user reads a topology: "the P3 output takes an L2 or
L3 parent 90% of the time". Pure Python.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from search_space import DecisionEncoding
from search_space.encoding import BLOCK_FN, BLOCK_REPEATS, LEVEL, LEVEL_SHIFT, WIDTH_MULTIPLIER

PARENTS = "parents"
KIND_TITLES = {
    LEVEL: "level (the scale permutation): base level of each block in build order (outputs: their level)",
    LEVEL_SHIFT: "level shift (block adjustment) of each intermediate block",
    BLOCK_FN: "block type of each block",
    WIDTH_MULTIPLIER: "width multiplier (resource distribution) of each block",
    BLOCK_REPEATS: "repeats (resource distribution) of each block",
    PARENTS: "parents: the level a block's two parents are at",
}
# The kinds shown one decision point per row, in this order (the spaces that decide them).
_POINT_KINDS = (LEVEL, LEVEL_SHIFT, BLOCK_FN, WIDTH_MULTIPLIER, BLOCK_REPEATS)


@dataclasses.dataclass(frozen=True)
class Heatmap:
    """Shares of the choices of one kind of decision.

    Attributes:
      kind: ``level``, ``level_shift``, ``block_fn``, ``width_multiplier``,
        ``block_repeats`` or ``parents``.
      title: what the rows and columns are.
      rows: one label per row (a decision point, or a group of blocks).
      columns: one label per choice.
      shares: ``shares[r][c]``: the share of row ``r`` that chose ``c``
        (each row sums to 1), or None where ``c`` is not a choice of ``r``.
      samples: the sequences the shares are counted from.
      totals: per row, the choices counted (one per sequence; two per
        block for parents, over every block of the row).
    """

    kind: str
    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    shares: tuple[tuple[float | None, ...], ...]
    samples: int
    totals: tuple[int, ...] = ()


def _value_label(kind: str, value) -> str:
    if kind == LEVEL:
        return f"L{value}"
    if kind == LEVEL_SHIFT:
        return f"{value:+d}"
    if kind == WIDTH_MULTIPLIER:
        return f"x{value:g}"
    return str(value)


def decision_heatmaps(encoding: DecisionEncoding, sequences: Sequence[Sequence[int]]) -> list[Heatmap]:
    """One heatmap per kind of decision the space has, counted over ``sequences``.

    Args:
      encoding: the decision encoding the sequences belong to.
      sequences: valid decision sequences (at least one).

    Returns:
      Heatmaps for ``level``, ``level_shift``, ``block_fn``,
      ``width_multiplier`` and ``block_repeats`` (those the space decides) and
      ``parents``.

    Raises:
      ValueError: no sequences.
      ArchitectureError: a sequence that is not valid in the encoding.
    """
    if not sequences:
        raise ValueError("decision_heatmaps needs at least one decision sequence")
    space = encoding.space
    m = space.num_stem
    out = []
    for kind in _POINT_KINDS:
        points = [p for p in encoding.points if p.kind == kind]
        if not points:
            continue
        values = sorted({v for p in points for v in p.values}, key=lambda v: (str(type(v)), v))
        columns = tuple(_value_label(kind, v) for v in values)
        rows, shares = [], []
        for p in points:
            counts = {v: 0 for v in p.values}
            for seq in sequences:
                counts[p.values[seq[p.index]]] += 1
            output = p.block - m >= space.num_intermediate
            rows.append(f"block {p.block}" + (" (output)" if output else ""))
            shares.append(tuple(counts[v] / len(sequences) if v in counts else None for v in values))
        n = len(sequences)
        out.append(Heatmap(kind, KIND_TITLES[kind], tuple(rows), columns, tuple(shares), n, (n,) * len(rows)))
    out.append(_parent_levels(encoding, sequences))
    return out


def _parent_levels(encoding: DecisionEncoding, sequences: Sequence[Sequence[int]]) -> Heatmap:
    space = encoding.space
    levels = list(range(space.min_level, space.max_level + 1))
    inter_rows = [f"L{lv} intermediate blocks" for lv in levels]
    out_rows = [f"P{lv} output block" for lv in space.output_levels]
    counts = {row: dict.fromkeys(levels, 0) for row in inter_rows + out_rows}
    for seq in sequences:
        arch = encoding.decode(seq)
        entry_levels = [s.level for s in arch.stem] + [b.level for b in arch.blocks]
        for block in arch.blocks:
            row = f"P{block.level} output block" if block.is_output else f"L{block.level} intermediate blocks"
            for parent in block.parents:
                counts[row][entry_levels[parent]] += 1
    rows, shares, totals = [], [], []
    for row in inter_rows + out_rows:
        total = sum(counts[row].values())
        if total:  # a level no intermediate block is ever at has no row
            rows.append(row)
            shares.append(tuple(counts[row][lv] / total for lv in levels))
            totals.append(total)
    columns = tuple(f"L{lv}" for lv in levels)
    return Heatmap(PARENTS, KIND_TITLES[PARENTS], tuple(rows), columns, tuple(shares), len(sequences), tuple(totals))


def _choice_phrase(kind: str, columns: list[str]) -> str:
    joined = " or ".join(columns)
    if kind == LEVEL:
        return f"is at {joined}"
    if kind == LEVEL_SHIFT:
        return f"shifts its level by {joined}"
    if kind == BLOCK_FN:
        return f"is a {joined} block"
    if kind == WIDTH_MULTIPLIER:
        return f"is {joined} wide"
    if kind == BLOCK_REPEATS:
        return f"repeats its block {joined} times"
    return f"takes a parent at {joined}"


def biggest_changes(start: list[Heatmap], now: list[Heatmap], limit: int = 6) -> list[str]:
    """Sentences on the rows whose distribution moved most from ``start`` to ``now``.

    Each names the row's most likely choice now (or its two most likely,
    when one alone is under 60% and the row has more than three choices),
    their share now and at the start, e.g. ``P3 output block takes a parent
    at L2 or L3 90% of the time (41% at the start)``. Rows are ranked by
    total variation distance. A row is left out unless that share moved by
    10 percentage points or more and by 4.5 standard errors of the
    difference of two counted shares: two counts of the same distribution
    differ by chance, by more with fewer samples (4.5, not 2: dozens of
    rows are compared at once, and the choices named are the likeliest in
    the latest count, which favours a difference).
    """
    scored = []
    for h0, h1 in zip(start, now):
        if h0.kind != h1.kind or h0.columns != h1.columns:
            continue
        before = {row: (shares, total) for row, shares, total in zip(h0.rows, h0.shares, h0.totals)}
        for row, shares, n1 in zip(h1.rows, h1.shares, h1.totals):
            if row not in before:
                continue
            old, n0 = before[row]
            valid = sorted((i for i, s in enumerate(shares) if s is not None), key=lambda i: (-(shares[i] or 0.0), i))
            if not valid:
                continue
            two = (shares[valid[0]] or 0.0) < 0.6 and len(valid) > 3
            chosen = valid[:2] if two else valid[:1]
            p1 = sum(shares[i] or 0.0 for i in chosen)
            p0 = sum(old[i] or 0.0 for i in chosen)
            pooled = (p1 * n1 + p0 * n0) / (n1 + n0)
            error = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n1 + 1 / n0))
            if abs(p1 - p0) < max(0.1, 4.5 * error):
                continue
            distance = 0.5 * sum(abs((a or 0.0) - (b or 0.0)) for a, b in zip(shares, old))
            cols = [h1.columns[i] for i in sorted(chosen)]
            text = f"{row} {_choice_phrase(h1.kind, cols)} {p1:.0%} of the time ({p0:.0%} at the start)"
            scored.append((distance, text))
    scored.sort(key=lambda x: -x[0])
    return [text for _, text in scored[:limit]]

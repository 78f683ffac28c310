"""Random sampling and mutation over the decision encoding (for random search and evolution)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from search_space.architecture import Architecture
from search_space.encoding import LEVEL, PARENT_A, PARENT_B, DecisionCursor, DecisionEncoding


def _valid(mask: Sequence[bool]) -> list[int]:
    return [i for i, ok in enumerate(mask) if ok]


def _sample_point(cursor: DecisionCursor, rng: random.Random) -> None:
    """Makes the current decision so that decision sequences come out uniformly.

    A level is picked in proportion to how many blocks of it are left (so each
    distinct level sequence is equally likely) and a parent pair is drawn
    uniformly among the valid pairs (not first parent, then second).
    """
    p = cursor.point
    choices = _valid(cursor.mask())
    if p.kind == LEVEL and cursor._is_intermediate(p.block):  # noqa: SLF001 - same package
        weights = [cursor._remaining[p.values[c]] for c in choices]  # noqa: SLF001
        cursor.choose(rng.choices(choices, weights=weights)[0])
    elif p.kind == PARENT_A:
        # Weight each first parent by the number of second parents it leaves.
        weights = [sum(1 for c2 in choices if c2 > c) + 1 for c in choices]
        cursor.choose(rng.choices(choices, weights=weights)[0])
    else:
        cursor.choose(rng.choice(choices))


def sample_decisions(encoding: DecisionEncoding, rng: random.Random) -> list[int]:
    """A uniformly random valid decision sequence.

    Args:
      encoding: the decision encoding of a search space.
      rng: the random source (seeded by the caller).

    Returns:
      The decisions; ``encoding.decode`` turns them into an architecture.
    """
    cursor = encoding.cursor()
    while not cursor.done:
        _sample_point(cursor, rng)
    return cursor.decisions


def sample_architecture(encoding: DecisionEncoding, rng: random.Random) -> Architecture:
    """A random member of the space (uniform over decision sequences)."""
    return encoding.decode(sample_decisions(encoding, rng))


def mutate_decisions(encoding: DecisionEncoding, decisions: Sequence[int], rng: random.Random) -> list[int]:
    """Changes one decision to another valid choice and keeps the rest valid.

    One decision point that has an alternative is picked uniformly and given a
    different valid choice. Later decisions are kept where they stay valid
    (e.g. a changed level may use up a level a later block had picked, and a
    changed first parent may rule out the second); those that do not are
    redrawn at random. The result always decodes to a different architecture.

    Args:
      encoding: the decision encoding.
      decisions: a valid decision sequence.
      rng: the random source.

    Returns:
      The mutated decisions.
    """
    decisions = list(decisions)
    masks = encoding.masks(decisions)
    mutable = [i for i, mask in enumerate(masks) if sum(mask) > 1]
    if not mutable:
        return decisions
    original = encoding.decode(decisions)
    while True:
        # A redrawn later decision can, rarely, rebuild the same network; draw again.
        mutated = _mutate_once(encoding, decisions, rng.choice(mutable), rng)
        if encoding.decode(mutated) != original:
            return mutated


def _mutate_once(encoding: DecisionEncoding, decisions: list[int], target: int, rng: random.Random) -> list[int]:
    cursor = encoding.cursor()
    for i, old in enumerate(decisions):
        mask = cursor.mask()
        if i == target:
            cursor.choose(rng.choice([c for c in _valid(mask) if c != old]))
        elif mask[old]:
            cursor.choose(old)
        elif cursor.point.kind == PARENT_B:
            cursor.choose(rng.choice(_valid(mask)))
        else:
            _sample_point(cursor, rng)
    return cursor.decisions

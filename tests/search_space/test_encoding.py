"""Architecture <-> decisions: masks, round trips, sampling and mutation."""

import dataclasses
import random

import pytest

from search_space import (
    ArchitectureError,
    DecisionEncoding,
    SearchSpace,
    architecture_from_json,
    architecture_to_json,
    mutate_decisions,
    resnet_like,
    sample_decisions,
    spinenet49,
)
from search_space.encoding import LEVEL, LEVEL_SHIFT, PARENT_A, PARENT_B

SPACES = {
    "spinenet49": SearchSpace(),
    "window4": SearchSpace(parent_window=4),
    "no_window": SearchSpace(parent_window=None),
    "permutation_only": SearchSpace(level_shifts=(0,), block_fns=("bottleneck",)),
    "one_level": SearchSpace(level_allocation=((4, 3),), output_levels=(3, 4, 5)),
    "one_output": SearchSpace(level_allocation=((3, 2), (4, 1)), output_levels=(4,), max_level=5),
}


def test_1000_random_architectures_are_valid_and_round_trip():
    space = SearchSpace()
    enc = DecisionEncoding(space)
    rng = random.Random(1234)
    seen = set()
    for _ in range(1000):
        decisions = sample_decisions(enc, rng)
        arch = enc.decode(decisions)
        space.validate_architecture(arch)
        assert enc.decode(enc.encode(arch)) == arch
        loaded, _ = architecture_from_json(architecture_to_json(arch))
        assert loaded == arch
        seen.add(arch.fingerprint())
    assert len(seen) == 1000  # the space is ~1e37: collisions would mean a bug


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_space_variant_round_trips(name):
    space = SPACES[name]
    enc = DecisionEncoding(space)
    rng = random.Random(7)
    for _ in range(100):
        arch = enc.decode(sample_decisions(enc, rng))
        space.validate_architecture(arch)
        assert enc.decode(enc.encode(arch)) == arch


def test_spinenet49_is_a_member_and_its_encoding_decodes_back():
    space = SearchSpace(scaling=spinenet49().scaling)
    enc = DecisionEncoding(space)
    decisions = enc.encode(spinenet49())
    assert enc.decode(decisions) == spinenet49()
    assert enc.decode(enc.encode(resnet_like())) == resnet_like()


def test_decision_points_describe_the_space():
    enc = DecisionEncoding(SearchSpace())
    kinds = [p.kind for p in enc.points]
    # Intermediate blocks: level, shift, type, two parents; the first block's
    # parents are forced (only the two stem candidates exist).
    assert kinds[:3] == [LEVEL, LEVEL_SHIFT, "block_fn"]
    assert kinds[3:8] == [LEVEL, LEVEL_SHIFT, "block_fn", PARENT_A, PARENT_B]
    assert len(enc) == 68
    last = enc.points[-1]
    assert last.kind == PARENT_B and last.num_choices == 16 and "block 16 (output)" in last.hint
    assert all(p.num_choices > 1 for p in enc.points)


def test_masks_follow_the_earlier_decisions():
    space = SearchSpace()
    enc = DecisionEncoding(space)
    cursor = enc.cursor()
    # First level: any allocation level.
    assert cursor.mask() == (True,) * 6
    cursor.choose(enc.points[0].values.index(7))  # base L7
    # Shift: L7 + {-1, 0} stays within L2..L7; +1 and +2 do not.
    assert cursor.mask() == (True, True, False, False)
    with pytest.raises(
        ArchitectureError,
        match=r"decision 1 \(block 2 \(intermediate\): level shift\): choice 3 is not allowed; allowed \[0, 1\]",
    ):
        cursor.choose(3)
    cursor.choose(1)
    cursor.choose(0)
    # L7 had one block: it is no longer available.
    assert cursor.mask()[enc.points[0].values.index(7)] is False


def test_parent_masks_respect_window_and_order():
    space = SearchSpace()
    enc = DecisionEncoding(space)
    rng = random.Random(3)
    decisions = sample_decisions(enc, rng)
    masks = enc.masks(decisions)
    for p, mask, choice in zip(enc.points, masks, decisions):
        if p.kind == PARENT_A and p.block - 2 < space.num_intermediate:
            allowed = [i for i, ok in enumerate(mask) if ok]
            assert allowed == list(range(max(0, p.block - 5), p.block - 1))
        if p.kind == PARENT_B:
            first = decisions[p.index - 1]
            assert [i for i, ok in enumerate(mask) if ok] == list(range(first + 1, p.block))
        assert mask[choice]


def test_every_mask_respecting_sequence_decodes():
    """Walk with a random valid choice at every step, biased to the extremes."""
    space = SearchSpace()
    enc = DecisionEncoding(space)
    rng = random.Random(11)
    for _ in range(300):
        cursor = enc.cursor()
        while not cursor.done:
            valid = [i for i, ok in enumerate(cursor.mask()) if ok]
            cursor.choose(rng.choice([valid[0], valid[-1], rng.choice(valid)]))
        space.validate_architecture(cursor.architecture())


def test_bad_decision_sequences_are_rejected():
    enc = DecisionEncoding(SearchSpace())
    good = enc.encode(spinenet49())
    with pytest.raises(ArchitectureError, match="decisions: got 67, the encoding needs 68"):
        enc.decode(good[:-1])
    bad = list(good)
    bad[0] = 6
    with pytest.raises(ArchitectureError, match="decision 0 .*choice 6 is not allowed"):
        enc.decode(bad)
    with pytest.raises(ArchitectureError, match="not allowed"):
        enc.decode([True] + good[1:])


def test_encode_rejects_non_members():
    enc = DecisionEncoding(SearchSpace(parent_window=3))
    with pytest.raises(ArchitectureError, match="outside the parent window of 3"):
        enc.encode(spinenet49())


def test_random_sampling_is_uniform_over_parent_pairs():
    """The last output block picks 2 of 16 parents: all 120 pairs equally likely."""
    enc = DecisionEncoding(SearchSpace())
    rng = random.Random(5)
    counts = {}
    n = 6000
    for _ in range(n):
        d = sample_decisions(enc, rng)
        pair = (d[-2], d[-1])
        counts[pair] = counts.get(pair, 0) + 1
    assert len(counts) == 120
    expected = n / 120
    # Chi-square with 119 degrees of freedom: 99.9th percentile is about 173.
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 173


def test_mutation_changes_the_architecture_and_stays_valid():
    space = SearchSpace()
    enc = DecisionEncoding(space)
    rng = random.Random(9)
    for _ in range(300):
        parent = sample_decisions(enc, rng)
        child = mutate_decisions(enc, parent, rng)
        child_arch = enc.decode(child)
        space.validate_architecture(child_arch)
        assert child_arch != enc.decode(parent)
        # Most mutations change one decision; repairs only touch later ones.
        first_diff = next(i for i, (a, b) in enumerate(zip(parent, child)) if a != b)
        assert parent[:first_diff] == child[:first_diff]


def test_mutation_of_a_parent_changes_only_that_block():
    enc = DecisionEncoding(SearchSpace())
    decisions = enc.encode(spinenet49())
    rng = random.Random(0)
    changed_points = []
    for _ in range(200):
        child = mutate_decisions(enc, decisions, rng)
        diffs = [i for i, (a, b) in enumerate(zip(decisions, child)) if a != b]
        changed_points.append(len(diffs))
    # Usually a single decision changes; sometimes a dependent one is repaired.
    assert sorted(changed_points)[len(changed_points) // 2] == 1


def test_decoded_architectures_carry_the_space_scaling():
    scaling = dataclasses.replace(SearchSpace().scaling, endpoints_num_filters=64)
    enc = DecisionEncoding(SearchSpace(scaling=scaling))
    arch = enc.decode(sample_decisions(enc, random.Random(0)))
    assert arch.scaling == scaling

"""Value types, generic validation and the fingerprint."""

import dataclasses

import pytest

from search_space import (
    Architecture,
    ArchitectureError,
    BlockSpec,
    Scaling,
    StemBlock,
    spinenet49,
    validate_architecture,
)


def _replace_block(arch, k, **changes):
    blocks = list(arch.blocks)
    blocks[k] = dataclasses.replace(blocks[k], **changes)
    return dataclasses.replace(arch, blocks=tuple(blocks))


def test_values_are_immutable_and_hashable():
    a = spinenet49()
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.blocks[0].level = 3
    assert hash(a) == hash(spinenet49())
    assert len({a, spinenet49(), a.with_scaling(Scaling(0.25, 0.25, 64, 1))}) == 2


def test_parents_are_stored_sorted():
    assert BlockSpec(3, "bottleneck", (5, 2)).parents == (2, 5)


def test_spinenet49_is_valid_and_has_one_unconsumed_block():
    a = spinenet49()
    validate_architecture(a)
    # docs/search_space.md#published-spinenet-49: block 11 is consumed by nobody (it feeds P5).
    assert a.unconsumed_intermediate() == (11,)


@pytest.mark.parametrize(
    "k, changes, message",
    [
        (0, {"level": 9}, "block 2: level 9 is out of range; allowed 2..7"),
        (0, {"level": 1}, "block 2: level 1 is out of range; allowed 2..7"),
        (3, {"block_fn": "dense"}, "block 5: block_fn 'dense' is unknown; allowed bottleneck, residual, mbconv"),
        (3, {"block_fn": "mbconv"}, "block 5: block_fn 'mbconv' does not go with a spinenet stem"),
        (3, {"parents": (2, 5)}, "block 5: parent 5 is not built yet; allowed 0..4"),
        (3, {"parents": (2, 9)}, "block 5: parent 9 is not built yet; allowed 0..4"),
        (3, {"parents": (-1, 2)}, "block 5: parent -1 is out of range; allowed 0..4"),
        (3, {"parents": (3, 3)}, "block 5: parent 3 is repeated"),
        (3, {"parents": (1, 2, 3)}, "block 5: needs exactly 2 parents, got 3"),
        (10, {"is_output": False}, "outputs: need exactly one output block at each of levels [3, 4, 5, 6, 7]"),
        (10, {"level": 5}, "got output levels [3, 5, 5, 6, 7]"),
        (0, {"is_output": True}, "got output levels [2, 3, 4, 5, 6, 7]"),
    ],
)
def test_invalid_blocks_are_rejected_with_the_place_and_allowed_values(k, changes, message):
    bad = _replace_block(spinenet49(), k, **changes)
    with pytest.raises(ArchitectureError) as e:
        validate_architecture(bad)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "scaling, message",
    [
        (Scaling(0.0, 0.5, 256, 1), "scaling.filter_size_scale must be a number > 0"),
        (Scaling(1.0, -1, 256, 1), "scaling.resample_alpha must be a number > 0"),
        (Scaling(1.0, 0.5, 0, 1), "scaling.endpoints_num_filters must be an integer >= 1"),
        (Scaling(1.0, 0.5, 256, 0), "scaling.block_repeats must be an integer >= 1"),
    ],
)
def test_invalid_scaling_is_rejected(scaling, message):
    with pytest.raises(ArchitectureError, match=message):
        validate_architecture(spinenet49(scaling))


def test_stem_needs_two_candidates():
    bad = dataclasses.replace(spinenet49(), stem=(StemBlock(),))
    with pytest.raises(ArchitectureError, match="stem: needs at least 2 candidates"):
        validate_architecture(bad)


def _swap_independent(arch: Architecture, k: int) -> Architecture:
    """Swaps blocks k and k+1 (running m+k, m+k+1), which must not depend on each other."""
    m = arch.num_stem
    a, b = m + k, m + k + 1
    assert a not in arch.blocks[k + 1].parents
    relabel = {a: b, b: a}
    blocks = list(arch.blocks)
    blocks[k], blocks[k + 1] = blocks[k + 1], blocks[k]
    blocks = [dataclasses.replace(x, parents=tuple(relabel.get(p, p) for p in x.parents)) for x in blocks]
    return dataclasses.replace(arch, blocks=tuple(blocks))


def test_fingerprint_ignores_the_listing_order_of_independent_blocks():
    a = spinenet49()
    # Blocks 6 and 7 both take parents (3, 5) and do not depend on each other.
    swapped = _swap_independent(a, 4)
    assert swapped != a
    validate_architecture(swapped)
    assert swapped.fingerprint() == a.fingerprint()
    assert swapped.canonical() == a.canonical()


def test_fingerprint_tells_different_networks_apart():
    a = spinenet49()
    assert _replace_block(a, 0, block_fn="residual").fingerprint() != a.fingerprint()
    assert _replace_block(a, 5, parents=(4, 5)).fingerprint() != a.fingerprint()
    other_scaling = a.with_scaling(Scaling(0.25, 0.25, 64, 1))
    assert other_scaling.fingerprint() != a.fingerprint()
    assert other_scaling.fingerprint(include_scaling=False) == a.fingerprint(include_scaling=False)

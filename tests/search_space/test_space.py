"""The search-space definition: sizes, membership and its errors."""

import dataclasses
import math

import pytest

from search_space import ArchitectureError, BlockSpec, SearchSpace, resnet_like, space_size, spinenet49


def _replace_block(arch, k, **changes):
    blocks = list(arch.blocks)
    blocks[k] = dataclasses.replace(blocks[k], **changes)
    return dataclasses.replace(arch, blocks=tuple(blocks))


def test_spinenet49_space_sizes_match_the_paper():
    size = space_size(SearchSpace())
    assert size.num_blocks == 15
    # docs/search_space.md#space-sizes: 10! * 5! = 435,456,000 orderings.
    assert size.permutations == 435_456_000
    product = 1
    for i in range(2, 17):
        product *= i * (i - 1) // 2
    assert size.connections == product
    assert f"{size.connections:.2e}" == "8.35e+20"
    assert size.adjustments == 4**10 * 2**15
    assert f"{size.adjustments:.2e}" == "3.44e+10"
    assert size.total == size.permutations * size.connections * size.adjustments
    assert f"{size.total:.2e}" == "1.25e+40"
    # Window 5: intermediate blocks choose among min(i, 5) entries.
    windowed = 1
    for j in range(15):
        i = 2 + j
        windowed *= math.comb(min(i, 5) if j < 10 else i, 2)
    assert size.connections_windowed == windowed
    assert f"{size.connections_windowed:.2e}" == "1.06e+18"
    assert size.total_windowed == size.permutations * windowed * size.adjustments


def test_permutation_and_connection_only_spaces_are_expressible():
    # R[N]-SP[M]: scale permutation and connections, no block adjustment.
    space = SearchSpace(level_shifts=(0,), block_fns=("bottleneck",), parent_window=None)
    size = space_size(space)
    assert size.adjustments == 1
    assert size.connections_windowed == size.connections
    assert size.total == size.permutations * size.connections
    space.validate_architecture(resnet_like())
    # Without level shifts, a block's level must come from the allocation as is.
    moved = _replace_block(resnet_like(), 0, level=3)
    with pytest.raises(ArchitectureError, match="cannot be reached from the level allocation"):
        space.validate_architecture(moved)


def test_presets_are_members_of_the_default_space():
    space = SearchSpace()
    space.validate_architecture(spinenet49())
    space.validate_architecture(resnet_like())
    assert space.contains(spinenet49())


@pytest.mark.parametrize(
    "k, changes, message",
    [
        # Block 8 (k=6) may only take parents 3..7 under the window of 5.
        (6, {"parents": (2, 7)}, "block 8: parent 2 is outside the parent window of 5; allowed 3..7"),
        (0, {"is_output": True, "level": 3}, "outputs: need exactly one output block"),
        (9, {"level": 7}, "block 11: level 7 cannot be reached"),
    ],
)
def test_space_specific_violations_are_named(k, changes, message):
    bad = _replace_block(spinenet49(), k, **changes)
    # Without shifts, L7 has room for one intermediate block only (block 9).
    space = SearchSpace(level_shifts=(0,)) if "reached" in message else SearchSpace()
    with pytest.raises(ArchitectureError, match=message):
        space.validate_architecture(bad)
    # With shifts, L5 + 2 reaches L7: the same block is a member.
    if "reached" in message:
        SearchSpace().validate_architecture(bad)


def test_outputs_must_come_after_intermediate_blocks():
    a = spinenet49()
    blocks = list(a.blocks)
    # Make block 11 an output at L3 and block 13 (the P3 output) intermediate.
    blocks[9] = dataclasses.replace(blocks[9], is_output=True, level=3)
    blocks[11] = dataclasses.replace(blocks[11], is_output=False, level=5)
    bad = dataclasses.replace(a, blocks=tuple(blocks))
    with pytest.raises(ArchitectureError, match="block 11: must be an intermediate block"):
        SearchSpace().validate_architecture(bad)


def test_wrong_block_count_and_stem_are_named():
    a = spinenet49()
    longer = dataclasses.replace(a, blocks=a.blocks[:10] + (BlockSpec(4, "bottleneck", (10, 11)),) + a.blocks[10:])
    with pytest.raises(ArchitectureError, match="this space has 15 blocks"):
        SearchSpace().validate_architecture(longer)
    with pytest.raises(ArchitectureError, match="stem: this space has 3 stem candidates"):
        SearchSpace(num_stem=3).validate_architecture(a)


def test_block_type_outside_the_space_is_named():
    space = SearchSpace(block_fns=("bottleneck",))
    with pytest.raises(ArchitectureError, match="block 3: block_fn 'residual' is unknown; allowed bottleneck"):
        space.validate_architecture(spinenet49())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"parent_window": 1}, "parent_window is 1"),
        ({"level_allocation": ((9, 1),)}, "level_allocation level 9 is out of range"),
        ({"level_allocation": ((4, 1), (4, 2))}, "lists a level twice"),
        ({"output_levels": (3, 3)}, "must be distinct"),
        ({"block_fns": ("conv",)}, "block_fn 'conv' is unknown"),
        ({"level_shifts": (3,), "max_level": 7}, "no level shift in [3] keeps L5 within L2..L7"),
        ({"num_stem": 1}, "num_stem is 1"),
    ],
)
def test_invalid_space_definitions_are_rejected(kwargs, message):
    with pytest.raises(ArchitectureError) as e:
        SearchSpace(**kwargs)
    assert message in str(e.value)


def test_base_level_assignment_prefers_no_shift():
    space = SearchSpace()
    # SpineNet-49's intermediate levels equal the allocation: every shift is 0.
    bases = space.assign_base_levels(spinenet49())
    assert list(bases) == [b.level for b in spinenet49().blocks[:10]]

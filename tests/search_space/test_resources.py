"""Resource distribution: per-block width multipliers and repeat counts, a fixed topology, sizes and files."""

import dataclasses
import json
import math
import random

import pytest

from search_space import (
    BOTTLENECK,
    MBCONV,
    ArchitectureError,
    BlockSpec,
    DecisionEncoding,
    Scaling,
    SearchSpace,
    architecture_from_dict,
    architecture_from_json,
    architecture_preset,
    architecture_to_block_specs,
    architecture_to_dict,
    architecture_to_json,
    mutate_decisions,
    sample_decisions,
    save_architecture,
    space_size,
    spinenet49,
    spinenet_mobile49,
)
from search_space.cost_model import check_buildable, model_cost
from search_space.encoding import BLOCK_REPEATS, WIDTH_MULTIPLIER
from search_space.space import SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION
from search_space.widths import base_filters

WIDTHS = (0.5, 0.75, 1.0, 1.25, 1.5)
REPEATS = (1, 2, 3)
PROXY = Scaling(0.25, 0.25, 64, 1)


def resource_space(**kwargs):
    return SearchSpace(scaling=PROXY, width_multipliers=WIDTHS, block_repeats=REPEATS, **kwargs)


def mobile_resource_space(**kwargs):
    return SearchSpace(
        level_allocation=SPINENET_MOBILE49_INTERMEDIATE_ALLOCATION,
        block_fns=(MBCONV,),
        scaling=Scaling(0.5, 0.5, 16, 1),
        width_multipliers=WIDTHS,
        block_repeats=REPEATS,
        **kwargs,
    )


SPACES = {
    "full": resource_space(),
    "fixed_spinenet49": resource_space(fixed_topology="preset:spinenet49"),
    "widths_only": SearchSpace(scaling=PROXY, width_multipliers=WIDTHS, fixed_topology="preset:resnet_like"),
    "mobile_full": mobile_resource_space(),
    "mobile_fixed": mobile_resource_space(fixed_topology="preset:spinenet_mobile49"),
}


def test_a_space_without_the_options_is_what_it_was():
    space = SearchSpace()
    enc = DecisionEncoding(space)
    assert len(enc) == 68 and not {WIDTH_MULTIPLIER, BLOCK_REPEATS} & {p.kind for p in enc.points}
    assert set(space.definition()) == {f.name for f in dataclasses.fields(space)} - {
        "width_multipliers", "block_repeats", "fixed_topology",
    }  # fmt: skip
    assert space_size(space).resources == 1 and not space.searches_resources
    # Fingerprints the presets had before blocks had resources (stored results refer to them).
    assert spinenet49().fingerprint() == "0403b71847575bbb"
    assert architecture_preset("resnet_like").fingerprint() == "3656a0ffb063b663"
    assert spinenet_mobile49().fingerprint() == "eda4bdb5b009b252"
    assert "width_multiplier" not in json.dumps(architecture_to_dict(spinenet49()))


def test_each_block_decides_its_width_then_its_repeats_after_its_topology():
    enc = DecisionEncoding(SPACES["full"])
    assert len(enc) == 68 + 2 * 15
    kinds = [p.kind for p in enc.points]
    assert kinds[:5] == ["level", "level_shift", "block_fn", WIDTH_MULTIPLIER, BLOCK_REPEATS]
    width = enc.points[3]
    assert width.values == WIDTHS and width.block == 2 and "block 2 (intermediate): width multiplier" in width.hint
    assert enc.points[-1].kind == BLOCK_REPEATS and enc.points[-1].values == REPEATS and enc.points[-1].block == 16


def test_sizes_multiply_in_the_resource_choices():
    plain = space_size(SearchSpace(scaling=PROXY))
    full = space_size(SPACES["full"])
    assert full.resources == (5 * 3) ** 15
    assert full.total == plain.total * full.resources and full.total_windowed == plain.total_windowed * full.resources
    assert (full.permutations, full.connections, full.adjustments) == (
        plain.permutations, plain.connections, plain.adjustments,
    )  # fmt: skip
    fixed = space_size(SPACES["fixed_spinenet49"])
    assert (fixed.permutations, fixed.connections, fixed.adjustments, fixed.connections_windowed) == (1, 1, 1, 1)
    assert fixed.total == fixed.total_windowed == 15**15
    assert space_size(SPACES["widths_only"]).total == 5**15
    assert space_size(SPACES["mobile_fixed"]).total == 15**16


@pytest.mark.parametrize("name", sorted(SPACES))
def test_random_decisions_decode_to_members_and_round_trip(name):
    space = SPACES[name]
    enc = DecisionEncoding(space)
    rng = random.Random(16)
    fixed = space.fixed_blocks()
    widths, repeats = set(), set()
    for _ in range(150):
        decisions = sample_decisions(enc, rng)
        arch = enc.decode(decisions)
        space.validate_architecture(arch)
        assert enc.decode(enc.encode(arch)) == arch
        assert architecture_from_json(architecture_to_json(arch))[0] == arch
        if fixed is not None:  # only resource decisions: one sequence per architecture
            assert arch.topology().blocks == fixed and enc.encode(arch) == decisions
        widths |= {b.width_multiplier for b in arch.blocks}
        repeats |= {b.block_repeats for b in arch.blocks}
    assert widths == set(space.width_multipliers)
    assert repeats == (set(space.block_repeats) or {1})


def test_a_fixed_topology_searches_only_the_resources():
    space = SPACES["fixed_spinenet49"]
    enc = DecisionEncoding(space)
    assert [p.kind for p in enc.points] == [WIDTH_MULTIPLIER, BLOCK_REPEATS] * 15
    assert space.fixed_blocks() == spinenet49().blocks
    # SpineNet-49 itself is the member with every block at 1.0 and 1 repeat.
    assert enc.decode(enc.encode(spinenet49(PROXY))) == spinenet49(PROXY)
    one = dataclasses.replace(spinenet49(PROXY).blocks[3], width_multiplier=1.5, block_repeats=3)
    arch = dataclasses.replace(spinenet49(PROXY), blocks=spinenet49().blocks[:3] + (one,) + spinenet49().blocks[4:])
    decisions = enc.encode(arch)
    assert decisions[6:8] == [4, 2] and sum(decisions) == 4 + 2 + 2 * 14
    # Mutation changes a resource and keeps the topology.
    mutated = enc.decode(mutate_decisions(enc, decisions, random.Random(3)))
    assert mutated != arch and mutated.topology() == arch.topology()


def test_the_fixed_topology_is_kept_as_block_specs_whatever_it_was_given_as(tmp_path):
    wide = dataclasses.replace(spinenet49(Scaling(1.0, 0.5, 256, 2)).blocks[0], width_multiplier=1.5)
    arch = dataclasses.replace(spinenet49(Scaling(1.0, 0.5, 256, 2)), blocks=(wide,) + spinenet49().blocks[1:])
    path = tmp_path / "best.json"
    save_architecture(path, arch)
    specs = [[b.level, b.block_fn, list(b.parents), b.is_output] for b in spinenet49().blocks]
    given = ["preset:spinenet49", str(path), path, specs]
    spaces = [resource_space(fixed_topology=g) for g in given]
    # The file's scaling and its blocks' resources are not part of the topology.
    assert {s.fixed_topology for s in spaces} == {tuple(architecture_to_block_specs(spinenet49())[2:])}
    assert all(s == spaces[0] for s in spaces)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width_multipliers": (0.0, 1.0)}, "width_multipliers: 0.0 is not a finite number > 0"),
        ({"width_multipliers": (1.0, math.inf)}, "width_multipliers: inf is not a finite number > 0"),
        ({"width_multipliers": (True, 1.0)}, "width_multipliers: True is not a finite number > 0"),
        ({"width_multipliers": (1.0, 1)}, r"width_multipliers \[1.0, 1.0\] must be distinct"),
        ({"block_repeats": (0, 1)}, "block_repeats: 0 is not an integer >= 1"),
        ({"block_repeats": (1, 1.5)}, "block_repeats: 1.5 is not an integer >= 1"),
        ({"block_repeats": (2, 2)}, r"block_repeats \[2, 2\] must be distinct"),
        ({"width_multipliers": (0.03, 1.0)}, "bottleneck blocks at L2: width_multiplier 0.03 leaves 16 channels"),
        ({"width_multipliers": (0.125, 1.0)}, "width_multiplier 0.125 leaves 2 channels, which resample_alpha 0.25"),
        ({"fixed_topology": "preset:spinenet49"}, "fixed_topology leaves nothing to search"),
        (
            {"fixed_topology": "preset:nope", "block_repeats": (1, 2)},
            "fixed_topology: unknown architecture preset 'nope'",
        ),
        ({"fixed_topology": "/no/such.json", "block_repeats": (1, 2)}, "cannot read architecture file"),
        (
            {"fixed_topology": [[2, "bottleneck", [0], False]], "block_repeats": (1, 2)},
            r"fixed_topology entry 0: expected \[level, block_fn, \[parent, parent\], is_output\]",
        ),
        (
            {"fixed_topology": "preset:spinenet_mobile49", "block_repeats": (1, 2)},
            "fixed_topology is not a member of the space: .*mbconv",
        ),
        (
            {"fixed_topology": "preset:spinenet49", "block_repeats": (1, 2), "parent_window": 3},
            "fixed_topology is not a member of the space: block 7: parent 3 is outside the parent window of 3",
        ),
    ],
)
def test_bad_options_are_one_clear_error(kwargs, message):
    with pytest.raises(ArchitectureError, match=message):
        SearchSpace(scaling=PROXY, **kwargs)


def test_membership_checks_the_resources_and_the_fixed_topology():
    wide = dataclasses.replace(spinenet49(PROXY).blocks[0], width_multiplier=1.25)
    arch = dataclasses.replace(spinenet49(PROXY), blocks=(wide,) + spinenet49().blocks[1:])
    with pytest.raises(
        ArchitectureError, match="block 2: width_multiplier 1.25 is not a choice.*set width_multipliers"
    ):
        SearchSpace().validate_architecture(arch)
    odd = dataclasses.replace(arch, blocks=(dataclasses.replace(wide, width_multiplier=0.6),) + arch.blocks[1:])
    with pytest.raises(
        ArchitectureError, match="block 2: width_multiplier 0.6 is not a choice of this space; allowed 0.5"
    ):
        SPACES["full"].validate_architecture(odd)
    deep = dataclasses.replace(arch, blocks=(dataclasses.replace(wide, block_repeats=4),) + arch.blocks[1:])
    with pytest.raises(
        ArchitectureError, match="block 2: block_repeats 4 is not a choice of this space; allowed 1, 2, 3"
    ):
        SPACES["full"].validate_architecture(deep)
    assert SPACES["full"].contains(arch) and SPACES["fixed_spinenet49"].contains(arch)
    other = architecture_preset("resnet_like")
    assert SPACES["full"].contains(other)
    with pytest.raises(
        ArchitectureError, match=r"block 3: this space keeps its topology fixed \(L4 residual, parents 0, 1\)"
    ):
        SPACES["fixed_spinenet49"].validate_architecture(other)


def test_files_carry_the_resources_and_old_files_read_as_before():
    blocks = list(spinenet49(PROXY).blocks)
    blocks[4] = dataclasses.replace(blocks[4], width_multiplier=0.75, block_repeats=3)
    arch = dataclasses.replace(spinenet49(PROXY), blocks=tuple(blocks))
    data = architecture_to_dict(arch)
    assert data["blocks"][4] == {
        "level": 6, "block_fn": "residual", "parents": [3, 5], "is_output": False,
        "width_multiplier": 0.75, "block_repeats": 3,
    }  # fmt: skip
    assert "width_multiplier" not in data["blocks"][3]  # written only where a block has its own
    assert architecture_from_dict(json.loads(json.dumps(data)))[0] == arch
    old = architecture_to_dict(spinenet49(PROXY))
    assert architecture_from_dict(old)[0] == spinenet49(PROXY)
    data["blocks"][4]["width_multiplier"] = 1
    assert architecture_from_dict(data)[0].blocks[4] == dataclasses.replace(blocks[4], width_multiplier=1.0)
    with pytest.raises(ArchitectureError, match="block 6: has its own width_multiplier or block_repeats.*format json"):
        architecture_to_block_specs(arch)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("width_multiplier", "wide", "block 3: width_multiplier: expected a finite number, got str 'wide'"),
        ("width_multiplier", None, "block 3: width_multiplier: expected a finite number, got null"),
        ("width_multiplier", True, "block 3: width_multiplier: expected a finite number, got bool"),
        ("width_multiplier", 0, "block 3: width_multiplier must be a finite number > 0, got 0.0"),
        ("width_multiplier", -1.5, "block 3: width_multiplier must be a finite number > 0, got -1.5"),
        ("block_repeats", 1.5, "block 3: block_repeats: expected an integer, got float 1.5"),
        ("block_repeats", "2", "block 3: block_repeats: expected an integer, got str '2'"),
        ("block_repeats", 0, "block 3: block_repeats must be an integer >= 1, got 0"),
        ("repeats", 2, "block 3: unknown key 'repeats'; allowed keys: .*width_multiplier, block_repeats"),
    ],
)
def test_malformed_resources_in_a_file_are_one_clear_error(key, value, message):
    data = architecture_to_dict(spinenet49())
    data["blocks"][1][key] = value
    with pytest.raises(ArchitectureError, match=message):
        architecture_from_dict(data)


def test_the_fingerprint_tells_resources_apart_but_not_the_listing_order():
    b = BOTTLENECK
    narrow, wide = BlockSpec(4, b, (0, 1), False, 0.5), BlockSpec(4, b, (0, 1), False, 1.5, 2)
    outputs = tuple(BlockSpec(level, b, (2, 3), True) for level in (3, 4, 5, 6, 7))
    one = dataclasses.replace(spinenet49(), blocks=(narrow, wide) + outputs)
    other = dataclasses.replace(spinenet49(), blocks=(wide, narrow) + outputs)
    assert one.fingerprint() == other.fingerprint()
    assert one.fingerprint() != one.topology().fingerprint()
    assert one.fingerprint() != dataclasses.replace(one, blocks=(narrow, narrow) + outputs).fingerprint()


def test_the_cost_model_gives_each_block_its_width_and_chained_repeats():
    blocks = list(spinenet49(PROXY).blocks)
    blocks[0] = dataclasses.replace(blocks[0], width_multiplier=1.5, block_repeats=3)  # L2 bottleneck, block 2
    arch = dataclasses.replace(spinenet49(PROXY), blocks=tuple(blocks))
    cost = model_cost(arch, input_size=128)
    block = cost.blocks[2]
    assert (block.width_multiplier, block.repeats) == (1.5, 3)
    assert block.channels == 4 * int(base_filters(2, 0.25) * 1.5) == 96
    plain = model_cost(spinenet49(PROXY), input_size=128)
    assert cost.params > plain.params and cost.multiply_adds > plain.multiply_adds
    assert [b for i, b in enumerate(cost.blocks) if i not in (2, 4, 5)] == [
        b for i, b in enumerate(plain.blocks) if i not in (2, 4, 5)
    ]  # only the block and its two children (which resample it) change
    # The scaling's block_repeats multiplies a block's own.
    scaled = model_cost(arch.with_scaling(dataclasses.replace(PROXY, block_repeats=2)), input_size=128)
    assert scaled.blocks[2].repeats == 6 and scaled.blocks[3].repeats == 2
    tiny = dataclasses.replace(arch, blocks=(dataclasses.replace(blocks[0], width_multiplier=0.01),) + arch.blocks[1:])
    with pytest.raises(ArchitectureError, match="block 2: width_multiplier 0.01 leaves 16 channels at level 2 with 0"):
        check_buildable(tiny, input_size=128)

"""Architecture files: JSON schema, block specs, and the loader's errors."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_space import (
    ArchitectureError,
    Provenance,
    Scaling,
    architecture_from_block_specs,
    architecture_from_dict,
    architecture_from_json,
    architecture_to_block_specs,
    architecture_to_dict,
    load_architecture,
    resnet_like,
    save_architecture,
    spinenet49,
)


def test_json_round_trip_with_provenance(tmp_path):
    arch = spinenet49(Scaling(0.25, 0.25, 64, 1))
    prov = Provenance(trial_id=12, reward=0.3125, search_id="abc")
    path = tmp_path / "arch.json"
    save_architecture(path, arch, prov)
    loaded, loaded_prov = load_architecture(path)
    assert loaded == arch
    assert loaded_prov == prov
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert data["blocks"][0] == {"level": 2, "block_fn": "bottleneck", "parents": [0, 1], "is_output": False}
    assert data["provenance"] == {"trial_id": 12, "reward": 0.3125, "search_id": "abc"}


def test_stem_and_scaling_are_optional():
    data = architecture_to_dict(spinenet49())
    del data["stem"], data["scaling"]
    arch, prov = architecture_from_dict(data)
    assert arch == spinenet49(Scaling())
    assert prov is None


def test_reference_block_specs_round_trip():
    specs = architecture_to_block_specs(spinenet49())
    assert specs[:3] == [
        (2, "bottleneck", (None, None), False),
        (2, "bottleneck", (None, None), False),
        (2, "bottleneck", (0, 1), False),
    ]
    assert specs[-1] == (6, "bottleneck", (12, 14), True)
    assert architecture_from_block_specs(specs, spinenet49().scaling) == spinenet49()


def test_a_block_spec_file_loads(tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(architecture_to_block_specs(resnet_like())))
    arch, prov = load_architecture(path)
    assert arch.blocks == resnet_like().blocks and prov is None


def _spinenet_dict():
    return architecture_to_dict(spinenet49())


def _with(path, value):
    data = _spinenet_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ["colour"],
            1,
            "architecture: unknown key 'colour'; allowed keys: blocks, provenance, scaling, schema_version, stem",
        ),
        (["schema_version"], 2, "schema_version: 2 is not supported; this version reads 1"),
        (["schema_version"], _DELETE, "architecture: missing key 'schema_version'"),
        (["blocks"], {"a": 1}, "blocks: expected a list, got dict"),
        (["blocks", 0, "level"], "2", "block 2: level: expected an integer, got str '2'"),
        (["blocks", 0, "level"], 2.0, "block 2: level: expected an integer, got float 2.0"),
        (["blocks", 0, "is_output"], 0, "block 2: is_output: expected true/false, got int 0"),
        (["blocks", 0, "parents"], [0], "block 2: parents must be a list of 2 integers"),
        (["blocks", 0, "parents"], [0, None], "block 2: parent: expected an integer, got null"),
        (["blocks", 1, "width"], 3, "block 3: unknown key 'width'"),
        (["blocks", 1, "block_fn"], _DELETE, "block 3: missing key 'block_fn'"),
        (["blocks", 1, "block_fn"], "dense", "block 3: block_fn 'dense' is unknown"),
        (["blocks", 1, "block_fn"], "mbconv", "block 3: block_fn 'mbconv' does not go with a spinenet stem"),
        (["blocks", 5, "parents"], [2, 12], "block 7: parent 12 is not built yet; allowed 0..6"),
        (["scaling", "block_repeats"], 1.5, "scaling.block_repeats: expected an integer, got float 1.5"),
        (["scaling", "filter_size_scale"], True, "scaling.filter_size_scale: expected a finite number, got bool"),
        (["scaling", "alpha"], 1.0, "scaling: unknown key 'alpha'"),
        (["provenance"], {"trial": 1}, "provenance: unknown key 'trial'"),
        (["provenance"], {"reward": "high"}, "provenance.reward: expected a finite number"),
        (["stem"], [{"level": 2}], "stem 0: missing key 'block_fn'"),
    ],
)
def test_loader_names_the_problem(path, value, message):
    with pytest.raises(ArchitectureError) as e:
        architecture_from_dict(_with(path, value))
    assert message in str(e.value)


def test_malformed_files_name_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ArchitectureError, match=r"nope.json: cannot read architecture file"):
        load_architecture(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 1, "blocks": [')
    with pytest.raises(ArchitectureError, match=r"broken.json: not valid JSON: .*line 1 column"):
        load_architecture(broken)
    nan = tmp_path / "nan.json"
    data = _spinenet_dict()
    text = json.dumps(data).replace('"resample_alpha": 0.5', '"resample_alpha": NaN')
    nan.write_text(text)
    with pytest.raises(ArchitectureError, match="scaling.resample_alpha: expected a finite number"):
        load_architecture(nan)


def test_bad_block_specs_are_named():
    specs = architecture_to_block_specs(spinenet49())
    with pytest.raises(ArchitectureError, match=r"block spec 4: expected \(level, block_fn"):
        architecture_from_block_specs(specs[:4] + [(3, "bottleneck")] + specs[5:])
    with pytest.raises(ArchitectureError, match="block spec 3: a stem block"):
        architecture_from_block_specs(specs[:3] + [(2, "bottleneck", (None, None), False)] + specs[3:])


# ----- property-based fuzzing of the loader ------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers(-3, 20) | st.floats(allow_nan=True) | st.text(max_size=5)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@st.composite
def _mutated_architecture_dicts(draw):
    """Valid dicts with random fields replaced, deleted or added."""
    data = _spinenet_dict()
    for _ in range(draw(st.integers(1, 3))):
        container = data
        keys = []
        while isinstance(container, (dict, list)) and container and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(container) if isinstance(container, dict) else range(len(container))))
            keys.append(key)
            if not isinstance(container[key], (dict, list)):
                break
            container = container[key]
        if not keys:
            data = draw(_json_values) if draw(st.booleans()) else data
            continue
        parent = data
        for key in keys[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[keys[-1]] = draw(_json_values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[keys[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(_json_values)
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_architecture_dicts())
def test_fuzzed_dicts_load_or_raise_the_project_error(data):
    try:
        arch, _ = architecture_from_dict(data)
    except ArchitectureError:
        return
    # Whatever loaded is a valid architecture and survives a round trip.
    assert architecture_from_dict(architecture_to_dict(arch))[0] == arch


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_bytes_load_or_raise_the_project_error(raw):
    try:
        architecture_from_json(raw)
    except ArchitectureError:
        pass


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_fuzzed_json_values_load_or_raise_the_project_error(value):
    try:
        architecture_from_json(json.dumps(value))
    except ArchitectureError:
        pass


def test_atomic_write_names_the_destination_and_leaves_no_temporary_file(tmp_path):
    from search_space.serialization import write_file_atomically

    path = tmp_path / "arch.json"
    write_file_atomically(path, "old\n")
    write_file_atomically(path, "new\n")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["arch.json"]
    (tmp_path / "dir.json").mkdir()  # renaming a file over a directory fails after the write
    with pytest.raises(OSError) as raised:
        write_file_atomically(tmp_path / "dir.json", "x")
    assert raised.value.filename == str(tmp_path / "dir.json")
    assert sorted(os.listdir(tmp_path)) == ["arch.json", "dir.json"] and not os.listdir(tmp_path / "dir.json")

"""Strict config overrides: dotted keys, YAML files, types, and the frozen-config diff."""

import pytest

from experiments.overrides import (
    ConfigError,
    apply_overrides,
    build_config,
    config_to_dict,
    diff_configs,
    load_config_file,
    parse_override_string,
)
from experiments.registry import experiment_names, get_experiment


@pytest.fixture
def config():
    return get_experiment("spinenet49_coco_proxy")


def test_override_strings_parse_yaml_values():
    assert parse_override_string("a.b=4, c=0.5,d=null,e=[1, 2],f=true,g=text") == {
        "a.b": 4,
        "c": 0.5,
        "d": None,
        "e": [1, 2],
        "f": True,
        "g": "text",
    }
    with pytest.raises(ConfigError, match="'oops' is not of the form key=value"):
        parse_override_string("a=1,oops")


def test_overrides_replace_nested_fields(config):
    new = apply_overrides(config, {"search_space.parent_window": 4, "search_space.level_shifts": [0, 1]})
    assert new.search_space.parent_window == 4
    assert new.search_space.level_shifts == (0, 1)
    assert config.search_space.parent_window == 5  # frozen: the original is untouched
    nested = apply_overrides(config, {"search_space": {"parent_window": None}})
    assert nested.search_space.parent_window is None


def test_on_off_switches_survive_yaml_booleans(config):
    # YAML 1.1 reads `on`/`off`/`true` as booleans; the switch fields take them as "on"/"off".
    parsed = parse_override_string("trainer.jit_compile=on,trainer.graph_optimizer=off,trainer.deterministic=true")
    new = apply_overrides(config, parsed)
    assert (new.trainer.jit_compile, new.trainer.graph_optimizer, new.trainer.deterministic) == ("on", "off", "on")
    with pytest.raises(ValueError, match="trainer.mixed_precision: 'on'; allowed auto, float32"):
        apply_overrides(config, {"trainer.mixed_precision": True}).validate()


def test_fields_checked_together_may_change_together(config):
    new = apply_overrides(config, {"search_space.max_level": 8, "search_space.level_allocation": [[8, 1], [4, 9]]})
    assert new.search_space.level_allocation == ((8, 1), (4, 9))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"search_space.windw": 3}, "unknown key 'search_space.windw'; allowed here: block_fns,"),
        ({"nothing": 3}, "unknown key 'nothing'; allowed here:"),
        ({"search_space.parent_window.x": 3}, "unknown key 'search_space.parent_window.x'"),
        ({"search_space.parent_window": "wide"}, "search_space.parent_window: expected an integer or null, got 'wide'"),
        ({"search_space.parent_window": 2.5}, "expected an integer or null"),
        ({"search_space.level_shifts": 1}, "search_space.level_shifts: expected a list"),
        ({"search_space.level_allocation": [[2, 1, 3]]}, "search_space.level_allocation[0]: expected 2 items"),
        ({"search_space.scaling.resample_alpha": True}, "search_space.scaling.resample_alpha: expected a number"),
        ({"search_space.parent_window": 1}, "parent_window is 1"),
    ],
)
def test_bad_overrides_name_the_key(config, overrides, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(config, overrides)
    assert message in str(e.value)


def test_config_files(tmp_path, config):
    good = tmp_path / "good.yaml"
    good.write_text("search_space:\n  parent_window: 4\nsearch:\n  max_trials: 7\n")
    new = apply_overrides(config, load_config_file(str(good)))
    assert new.search_space.parent_window == 4 and new.search.max_trials == 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("search_space: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config_file(str(bad))
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config_file(str(listing))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(str(tmp_path / "missing.yaml"))


def test_a_config_round_trips_through_plain_data(config):
    data = config_to_dict(config)
    assert build_config(type(config), data) == config
    data["search"]["surprise"] = 1
    with pytest.raises(ConfigError, match="unknown key 'search.surprise'"):
        build_config(type(config), data)


def test_diff_names_the_changed_keys(config):
    other = apply_overrides(config, {"search.seed": 3, "search_space.parent_window": 4})
    assert diff_configs(config, other) == ["search.seed", "search_space.parent_window"]
    assert diff_configs(config, config) == []


def test_every_registered_experiment_validates():
    names = experiment_names()
    assert "spinenet49_coco_proxy" in names
    for name in names:
        get_experiment(name).validate()


def test_baseline_variants_differ_only_in_the_algorithm():
    from experiments.overrides import diff_configs

    for base in ("synthetic_smoke", "spinenet49_coco_proxy"):
        for algorithm in ("random", "evolution"):
            variant = get_experiment(f"{base}_{algorithm}")
            assert variant.controller.algorithm == algorithm
            differing = diff_configs(get_experiment(base), variant)
            assert all(k in ("name", "description") or k.startswith("controller.") for k in differing), differing

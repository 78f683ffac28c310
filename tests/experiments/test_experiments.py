"""The registered experiments: their settings, cross-field checks, overrides and round trips."""

import dataclasses

import pytest

from controller.config import SAMPLE_EFFICIENT_REINFORCE
from experiments.config import ExperimentConfig
from experiments.overrides import ConfigError, apply_overrides, config_to_dict, parse_override_string
from experiments.registry import experiment_names, get_experiment
from proxy_trainer.data.coco_files import DataError
from proxy_trainer.data.pipeline import prepare_data
from search_space import SearchSpace, model_preset
from search_space.space import SPINENET49_INTERMEDIATE_ALLOCATION


def test_both_experiments_are_registered_and_valid():
    assert {"spinenet49_coco_proxy", "synthetic_smoke"} <= set(experiment_names())
    for name in ("spinenet49_coco_proxy", "synthetic_smoke"):
        config = get_experiment(name)
        assert isinstance(config, ExperimentConfig) and config.name == name
        config.validate()


def test_spinenet49_coco_proxy_is_the_papers_proxy():
    config = get_experiment("spinenet49_coco_proxy")
    assert config.search_space.parent_window == 5
    assert config.search_space.scaling == model_preset("proxy").scaling
    assert config.search_space.level_allocation == SPINENET49_INTERMEDIATE_ALLOCATION
    assert (config.model.model_id, config.model.input_size, config.model.num_classes) == ("proxy", 512, 90)
    assert config.model.head_size() == (4, 64)
    assert (config.data.source, config.data.holdout_size, config.data.scale_jitter) == ("coco", 7392, (0.5, 2.0))
    t = config.trainer
    assert (t.batch_size, t.epochs, t.learning_rate, t.warmup_steps, t.momentum) == (64, 5.0, 0.08, 500, 0.9)
    # NAS-RL's network, trained with the setting bench_controllers measured for budgets of hundreds of trials.
    c = config.controller
    assert (c.algorithm, c.policy.lstm_layers, c.policy.lstm_units, c.policy_gradient.update_every) == (
        "reinforce", 2, 35, 4,
    )  # fmt: skip
    assert c == SAMPLE_EFFICIENT_REINFORCE and config.search.max_trials == 1000


def test_coco_experiment_needs_the_users_data_paths(tmp_path):
    config = get_experiment("spinenet49_coco_proxy")
    with pytest.raises(ConfigError, match="data.annotation_file and data.image_dir are not both set"):
        config.require_data()
    missing = str(tmp_path / "instances_train2017.json")
    config = apply_overrides(
        config, {"data.annotation_file": missing, "data.image_dir": str(tmp_path), "data.cache_dir": str(tmp_path)}
    )
    config.validate()
    config.require_data()
    with pytest.raises(DataError, match="instances_train2017.json"):
        prepare_data(config.data, config.model.input_size)


def test_synthetic_smoke_is_small():
    config = get_experiment("synthetic_smoke")
    assert config.data.source == "synthetic" and config.model.input_size <= 128
    assert config.search_space.level_allocation == SearchSpace().level_allocation
    assert config.model.model_id is None and config.trainer.batch_size <= 16
    assert config.trainer.total_steps(config.data.synthetic.num_images - config.data.holdout_size) <= 500


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.model_id='49'", "search_space.scaling"),
        ("model.num_classes=2", "model.num_classes is 2 but data.synthetic.num_classes is 4"),
        ("trainer.batch_size=0", "trainer.batch_size: 0"),
        ("model.input_size=96", "model.input_size"),
        ("data.holdout_size=5000", "data.holdout_size"),
    ],
)
def test_cross_field_checks(override, message):
    config = apply_overrides(get_experiment("synthetic_smoke"), parse_override_string(override))
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match="unknown key 'trainer.lr'; allowed here: .*learning_rate"):
        apply_overrides(get_experiment("synthetic_smoke"), {"trainer.lr": 0.1})


@pytest.mark.parametrize("name", ["spinenet49_coco_proxy", "synthetic_smoke"])
def test_config_round_trips_through_plain_data(name):
    config = get_experiment(name)
    changed = apply_overrides(config, {"trainer.learning_rate": 0.02, "model.aspect_ratios": [1.0, 2.0]})
    assert apply_overrides(get_experiment(name), config_to_dict(changed)) == changed
    assert dataclasses.replace(changed, name=name) == changed


def test_each_experiment_limits_a_trials_time_well_above_its_expected_trial_time():
    """A hung trial would hold its worker (and GPU) for the rest of the search; 0 would mean no limit."""
    from experiments.search_config import RUNTIME_KEYS

    assert get_experiment("synthetic_smoke").search.trial_timeout_s == 600  # a trial: ~30 s on a core
    assert get_experiment("spinenet49_coco_proxy").search.trial_timeout_s == 6 * 3600  # ~10 min on an H100
    assert "search.trial_timeout_s" in RUNTIME_KEYS  # how a search runs, not what it computes
    for bad in (-1, float("nan"), float("inf")):
        config = apply_overrides(get_experiment("synthetic_smoke"), {"search.trial_timeout_s": bad})
        with pytest.raises(ConfigError, match="search.trial_timeout_s is .*; must be >= 0 seconds"):
            config.validate()
    apply_overrides(get_experiment("synthetic_smoke"), {"search.trial_timeout_s": 0}).validate()

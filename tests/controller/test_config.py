"""ControllerConfig: defaults from the papers, strict overrides, validation, the factory."""

import dataclasses

import pytest

from controller import (
    ControllerConfig,
    ControllerConfigError,
    PPOController,
    RandomSearch,
    RegularizedEvolution,
    ReinforceController,
    build_controller,
)
from experiments.overrides import ConfigError, apply_overrides


def test_defaults_are_nas_rl():
    config = ControllerConfig()
    config.validate()
    assert config.algorithm == "reinforce"
    assert (config.policy.lstm_layers, config.policy.lstm_units, config.policy.init_range) == (2, 35, 0.08)
    assert config.policy_gradient.learning_rate == 6e-4
    assert config.policy_gradient.update_every == 8
    assert (config.evolution.population_size, config.evolution.tournament_size) == (100, 25)
    assert config.failure_policy == "skip"


@pytest.mark.parametrize(
    "name, cls",
    [
        ("reinforce", ReinforceController),
        ("ppo", PPOController),
        ("evolution", RegularizedEvolution),
        ("random", RandomSearch),
    ],
)
def test_factory_builds_every_algorithm_with_the_configured_values(encoding, name, cls):
    config = apply_overrides(
        ControllerConfig(),
        {
            "algorithm": name,
            "policy.lstm_units": 12,
            "policy_gradient.learning_rate": 0.01,
            "policy_gradient.update_every": 3,
            "ppo.epochs": 2,
            "evolution.population_size": 10,
            "evolution.tournament_size": 4,
            "failure_policy": "fixed",
            "failure_reward": -0.5,
        },
    )
    c = build_controller(config, encoding, seed=4)
    assert type(c) is cls and c.name == name and c.seed == 4
    assert (c.failure_policy, c.failure_reward) == ("fixed", -0.5)
    hparams = c.get_state()["hparams"]
    if name in ("reinforce", "ppo"):
        assert (hparams["lstm_units"], hparams["learning_rate"], hparams["update_every"]) == (12, 0.01, 3)
    if name == "ppo":
        assert hparams["epochs"] == 2
    if name == "evolution":
        assert (hparams["population_size"], hparams["tournament_size"]) == (10, 4)


def test_overrides_are_strict():
    with pytest.raises(ConfigError, match="unknown key 'policy.units'; allowed here: embedding_size, init_range"):
        apply_overrides(ControllerConfig(), {"policy.units": 3})
    with pytest.raises(ConfigError, match="policy_gradient.update_every"):
        apply_overrides(ControllerConfig(), {"policy_gradient.update_every": "eight"})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"algorithm": "bayes"}, "controller.algorithm is 'bayes'; allowed evolution, ppo, random, reinforce"),
        ({"failure_policy": "zero"}, "controller.failure_policy is 'zero'; allowed skip, fixed"),
        (
            {"policy_gradient.baseline_decay": 1.0},
            r"controller.policy_gradient.baseline_decay is 1.0; must be in \[0, 1\)",
        ),
        ({"ppo.clip_ratio": 0.0}, "controller.ppo.clip_ratio is 0.0"),
        ({"evolution.tournament_size": 200}, "controller.evolution.tournament_size is 200; must be in 1..100"),
        ({"policy.lstm_units": 0}, "controller.policy.lstm_units is 0; must be >= 1"),
    ],
)
def test_validate_names_the_field_and_the_allowed_values(encoding, overrides, message):
    config = apply_overrides(ControllerConfig(), overrides)
    with pytest.raises(ControllerConfigError, match=message):
        config.validate()
    with pytest.raises(ControllerConfigError, match=message):
        build_controller(config, encoding, seed=0)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ControllerConfig().algorithm = "ppo"

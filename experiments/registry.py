"""The registry of named experiments (Model Garden's exp_factory habit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from experiments.config import ExperimentConfig
from search_space.errors import UserError

_REGISTRY: dict[str, Callable[[], ExperimentConfig]] = {}


class UnknownExperimentError(UserError, KeyError):
    """The experiment name is not registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str) -> Callable[[Callable[[], ExperimentConfig]], Callable[[], ExperimentConfig]]:
    """Decorator registering a zero-argument function that returns a config."""

    def decorate(fn: Callable[[], ExperimentConfig]) -> Callable[[], ExperimentConfig]:
        if name in _REGISTRY or name in _builtin():
            raise ValueError(f"experiment {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return decorate


def experiment_names() -> list[str]:
    """Registered names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_experiment(name: str) -> ExperimentConfig:
    """A fresh config of a registered experiment.

    Raises:
      UnknownExperimentError: naming the known experiments.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise UnknownExperimentError(f"unknown experiment {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    config = _REGISTRY[name]()
    config.validate()
    return config


def experiment_from_dict(data: Any) -> ExperimentConfig:
    """A config from its plain form (``experiments.overrides.config_to_dict``), validated.

    The one way a config is rebuilt from a file or a message: the search's
    driver (``nas.workdir.Workdir.config``) and its workers (the proxy
    evaluator) both use it, so they run the same config. The experiment must
    still be registered; keys missing from ``data`` take the field defaults.

    Raises:
      ConfigError: not a config, an unknown or unregistered experiment, an
        unknown key or a wrong type, or an invalid value.
    """
    from experiments.overrides import ConfigError, build_config

    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError("not an experiment config (a mapping with a 'name')")
    _load_builtin()
    if data["name"] not in _REGISTRY:
        raise ConfigError(f"unknown experiment {data['name']!r}; known: {', '.join(sorted(_REGISTRY))}")
    config = build_config(ExperimentConfig, data)
    config.validate()
    return config


def configure_experiment(
    name: str,
    *,
    config_file: str | None = None,
    params_override: str | None = None,
    extra_overrides: dict | None = None,
) -> ExperimentConfig:
    """A registered experiment after a YAML file, an override string and extra overrides, validated.

    Raises:
      UnknownExperimentError, ConfigError: naming the experiment or key.
    """
    from experiments.overrides import apply_overrides, load_config_file, parse_override_string

    config = get_experiment(name)
    if config_file:
        config = apply_overrides(config, load_config_file(config_file))
    if params_override:
        config = apply_overrides(config, parse_override_string(params_override))
    if extra_overrides:
        config = apply_overrides(config, extra_overrides)
    config.validate()
    return config


def _builtin() -> dict[str, Callable[[], ExperimentConfig]]:
    """The experiments this package defines (its modules do not import the registry)."""
    from experiments.baselines import baseline_experiments
    from experiments.resource import spinenet_mobile_resource_coco_proxy, synthetic_resource_smoke
    from experiments.spinenet_coco import spinenet49_coco_proxy
    from experiments.spinenet_mobile import spinenet_mobile_coco_proxy, synthetic_mobile_smoke
    from experiments.synthetic import synthetic_smoke

    return {
        "spinenet49_coco_proxy": spinenet49_coco_proxy,
        "synthetic_smoke": synthetic_smoke,
        "spinenet_mobile_coco_proxy": spinenet_mobile_coco_proxy,
        "synthetic_mobile_smoke": synthetic_mobile_smoke,
        "synthetic_resource_smoke": synthetic_resource_smoke,
        "spinenet_mobile_resource_coco_proxy": spinenet_mobile_resource_coco_proxy,
        **baseline_experiments(),
    }


def _load_builtin() -> None:
    for name, fn in _builtin().items():
        _REGISTRY.setdefault(name, fn)

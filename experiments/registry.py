"""The registry of named experiments (Model Garden's exp_factory habit)."""

from __future__ import annotations

from collections.abc import Callable

from experiments.config import ExperimentConfig

_REGISTRY: dict[str, Callable[[], ExperimentConfig]] = {}


class UnknownExperimentError(KeyError):
    """The experiment name is not registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str) -> Callable[[Callable[[], ExperimentConfig]], Callable[[], ExperimentConfig]]:
    """Decorator registering a zero-argument function that returns a config."""

    def decorate(fn: Callable[[], ExperimentConfig]) -> Callable[[], ExperimentConfig]:
        if name in _REGISTRY:
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


def _load_builtin() -> None:
    # Importing the modules registers their experiments.
    import experiments.synthetic  # noqa: F401
    from experiments import baselines, spinenet_coco  # noqa: F401

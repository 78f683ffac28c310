"""The same searches with the baseline algorithms, for comparison with the RNN controller."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from experiments.config import ExperimentConfig
from experiments.spinenet_coco import spinenet49_coco_proxy
from experiments.synthetic import synthetic_smoke


def _with_algorithm(config: ExperimentConfig, algorithm: str, name: str) -> ExperimentConfig:
    controller = dataclasses.replace(config.controller, algorithm=algorithm)
    if algorithm == "evolution" and config.search.max_trials < 4 * controller.evolution.population_size:
        # A short search needs a small population, or evolution never leaves its random start.
        population = max(4, config.search.max_trials // 2)
        evolution = dataclasses.replace(
            controller.evolution, population_size=population, tournament_size=max(2, population // 3)
        )
        controller = dataclasses.replace(controller, evolution=evolution)
    description = f"{config.description} ({algorithm} instead of the RNN controller)"
    return dataclasses.replace(config, name=name, description=description, controller=controller)


def baseline_experiments() -> dict[str, Callable[[], ExperimentConfig]]:
    """``{name: make_config}`` of every experiment with the baseline algorithms instead of the RNN controller."""
    return {
        f"{base.__name__}_{algorithm}": functools.partial(_variant, base, algorithm)
        for base in (spinenet49_coco_proxy, synthetic_smoke)
        for algorithm in ("random", "evolution")
    }


def _variant(base: Callable[[], ExperimentConfig], algorithm: str) -> ExperimentConfig:
    return _with_algorithm(base(), algorithm, f"{base.__name__}_{algorithm}")

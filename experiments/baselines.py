"""The same searches with the baseline algorithms, for comparison with the RNN controller."""

from __future__ import annotations

import dataclasses

from experiments.config import ExperimentConfig
from experiments.registry import register
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


for _base in (spinenet49_coco_proxy, synthetic_smoke):
    for _algorithm in ("random", "evolution"):
        _name = f"{_base.__name__}_{_algorithm}"
        register(_name)(lambda base=_base, algorithm=_algorithm, name=_name: _with_algorithm(base(), algorithm, name))

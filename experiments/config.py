"""Typed, frozen experiment configuration.

Configuration flows one way: a registered experiment builds an
``ExperimentConfig``; strict overrides (``experiments.overrides``) replace
fields; ``validate()`` checks cross-field rules; factories build objects from
it. Sections are added by the parts of the system that own them.
"""

from __future__ import annotations

import dataclasses

from controller.config import ControllerConfig
from controller.reward import RewardConfig
from experiments.search_config import SearchConfig
from search_space import SearchSpace


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: what is searched, and (in later sections) how.

    Attributes:
      name: the registered name.
      description: one line for listings.
      search_space: the SpineNet search space.
      controller: the search algorithm and its hyperparameters.
      reward: how a trial's metrics become the controller's reward.
      search: how the search runs (trials, slots, resources, evaluator).
    """

    name: str
    description: str = ""
    search_space: SearchSpace = SearchSpace()
    controller: ControllerConfig = ControllerConfig()
    reward: RewardConfig = RewardConfig()
    search: SearchConfig = SearchConfig()

    def validate(self) -> None:
        """Raises ValueError naming the first inconsistent field."""
        self.search_space.validate()
        self.controller.validate()
        self.reward.validate()
        self.search.validate()

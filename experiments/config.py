"""Typed, frozen experiment configuration.

Configuration flows one way: a registered experiment builds an
``ExperimentConfig``; strict overrides (``experiments.overrides``) replace
fields; ``validate()`` checks cross-field rules; factories build objects from
it. Sections are added by the parts of the system that own them.
"""

from __future__ import annotations

import dataclasses

from search_space import SearchSpace


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: what is searched, and (in later sections) how.

    Attributes:
      name: the registered name.
      description: one line for listings.
      search_space: the SpineNet search space.
    """

    name: str
    description: str = ""
    search_space: SearchSpace = SearchSpace()

    def validate(self) -> None:
        """Raises ValueError naming the first inconsistent field."""
        self.search_space.validate()

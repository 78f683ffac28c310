"""Random search: every proposal a uniformly random member of the space.

The baseline every learning algorithm must beat. Decision sequences come out
uniformly (``search_space.sample_decisions``); proposal ``i`` draws from its
own generator seeded with ``(seed, i)``, so the sequence of proposals depends
on nothing but the seed, and the state is the counters alone.
"""

from __future__ import annotations

import random
from typing import Any

from controller.base import FAILURE_SKIP, BaseController, Proposal
from search_space import DecisionEncoding, sample_decisions


def proposal_rng(algorithm: str, seed: int, proposal_id: int) -> random.Random:
    """The random generator of one proposal (string seeds hash with SHA-512: stable across runs)."""
    return random.Random(f"{algorithm}:{seed}:{proposal_id}")


class RandomSearch(BaseController):
    """Uniform random sampling over the decision encoding.

    Args:
      encoding: the decision encoding.
      seed: a non-negative integer.
      failure_policy, failure_reward: see ``BaseController`` (only the
        counters see them: random search learns nothing).
    """

    name = "random"

    def __init__(
        self,
        encoding: DecisionEncoding,
        seed: int,
        *,
        failure_policy: str = FAILURE_SKIP,
        failure_reward: float = 0.0,
    ):
        super().__init__(encoding, seed, failure_policy=failure_policy, failure_reward=failure_reward)

    def _sample(self, proposal_id: int) -> tuple[list[int], dict[str, Any]]:
        return sample_decisions(self.encoding, proposal_rng(self.name, self.seed, proposal_id)), {}

    def _learn(self, proposal: Proposal, reward: float) -> None:
        """Random search does not learn."""

"""Regularized evolution (Real et al., AAAI 2019, "aging evolution").

A population of the ``population_size`` most recent results. Until
``population_size`` random proposals have been made (or while no result has
arrived yet) proposals are uniformly random. After that each proposal samples
``tournament_size`` distinct members uniformly, takes the one with the best
reward (the earliest on a tie) and mutates one of its decisions
(``search_space.mutate_decisions``). A result joins the population when it
arrives, and the oldest member leaves once the population is over size: age,
not reward, decides who dies, which is what regularizes the search.

Asynchrony: results join in the order they arrive, so many workers simply
mean the parent is picked from a population a few results behind. A failed
trial joins only under the ``fixed`` failure policy (with the fixed reward);
under ``skip`` it leaves the population untouched.

Randomness: proposal ``i`` draws its tournament and mutation from a generator
seeded with ``(seed, i)``.
"""

from __future__ import annotations

from typing import Any

from controller.base import (
    FAILURE_SKIP,
    BaseController,
    ControllerStateError,
    Proposal,
    check_hparam,
)
from controller.random_search import proposal_rng
from search_space import DecisionEncoding, mutate_decisions, sample_decisions


class RegularizedEvolution(BaseController):
    """Aging evolution over the decision encoding.

    Args:
      encoding: the decision encoding.
      seed: a non-negative integer.
      population_size: members kept (Real et al.: 100).
      tournament_size: members sampled per tournament (Real et al.: 25);
        at most ``population_size``.
      failure_policy, failure_reward: see ``BaseController``.

    Raises:
      ValueError: a size out of range.
    """

    name = "evolution"

    def __init__(
        self,
        encoding: DecisionEncoding,
        seed: int,
        *,
        population_size: int = 100,
        tournament_size: int = 25,
        failure_policy: str = FAILURE_SKIP,
        failure_reward: float = 0.0,
    ):
        super().__init__(encoding, seed, failure_policy=failure_policy, failure_reward=failure_reward)
        check_hparam(
            isinstance(population_size, int) and population_size >= 2,
            "population_size",
            population_size,
            "an integer >= 2",
        )
        check_hparam(
            isinstance(tournament_size, int) and 1 <= tournament_size <= population_size,
            "tournament_size",
            tournament_size,
            f"an integer in 1..{population_size} (the population size)",
        )
        self.population_size = population_size
        self.tournament_size = tournament_size
        # Oldest first: [proposal_id, decisions, reward].
        self._population: list[tuple[int, tuple[int, ...], float]] = []
        self._num_random = 0
        self._num_mutated = 0

    def _hparams(self) -> dict[str, Any]:
        return {
            **super()._hparams(),
            "population_size": self.population_size,
            "tournament_size": self.tournament_size,
        }

    def _sample(self, proposal_id: int) -> tuple[list[int], dict[str, Any]]:
        rng = proposal_rng(self.name, self.seed, proposal_id)
        if self._num_random < self.population_size or not self._population:
            self._num_random += 1
            return sample_decisions(self.encoding, rng), {"parent": None}
        k = min(self.tournament_size, len(self._population))
        contenders = rng.sample(range(len(self._population)), k)
        best = max(sorted(contenders), key=lambda i: self._population[i][2])
        parent_id, parent_decisions, _ = self._population[best]
        self._num_mutated += 1
        return mutate_decisions(self.encoding, parent_decisions, rng), {"parent": parent_id}

    def _learn(self, proposal: Proposal, reward: float) -> None:
        self._population.append((proposal.proposal_id, tuple(proposal.decisions), reward))
        if len(self._population) > self.population_size:
            self._population.pop(0)
        self._policy_version += 1

    def _algorithm_stats(self) -> dict[str, float]:
        out = {"population": float(len(self._population)), "mutated": float(self._num_mutated)}
        if self._population:
            out["population_mean_reward"] = sum(r for _, _, r in self._population) / len(self._population)
        return out

    def _algorithm_state(self) -> dict[str, Any]:
        return {
            "population": [[pid, list(d), r] for pid, d, r in self._population],
            "num_random": self._num_random,
            "num_mutated": self._num_mutated,
        }

    def _restore_algorithm_state(self, state: dict[str, Any]) -> None:
        population = []
        for item in state["population"]:
            if not isinstance(item, list) or len(item) != 3:
                raise ControllerStateError(f"population member {item!r} must be [proposal_id, decisions, reward]")
            pid, decisions, reward = item
            decisions = tuple(int(d) for d in decisions)
            self.encoding.decode(decisions)  # raises ArchitectureError on invalid decisions
            population.append((int(pid), decisions, float(reward)))
        if len(population) > self.population_size:
            raise ControllerStateError(f"population has {len(population)} members; at most {self.population_size}")
        num_random, num_mutated = int(state["num_random"]), int(state["num_mutated"])
        self._population = population
        self._num_random = num_random
        self._num_mutated = num_mutated

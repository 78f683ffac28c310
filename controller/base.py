"""The protocol every search algorithm follows (Ray Tune's Searcher, PyGlove's DNAGenerator).

A controller proposes architectures as decision sequences over a
``DecisionEncoding`` and learns from the rewards fed back. Feedback may come
out of order and for proposals sampled by an older policy: many trials run at
once. ``get_state``/``set_state`` capture everything as plain JSON-ready data
so that a restored controller continues exactly as the original would have.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from search_space import Architecture, DecisionEncoding

STATE_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One sampled architecture and what its algorithm needs back.

    Attributes:
      proposal_id: unique within the controller, increasing.
      decisions: the decision sequence.
      architecture: the decoded architecture.
      policy_version: version of the policy that sampled it (number of updates
        made before sampling).
      data: algorithm-specific JSON-ready data (e.g. the log-probability).
    """

    proposal_id: int
    decisions: tuple[int, ...]
    architecture: Architecture
    policy_version: int = 0
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the architecture is re-derived from the decisions)."""
        return {
            "proposal_id": self.proposal_id,
            "decisions": list(self.decisions),
            "policy_version": self.policy_version,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], encoding: DecisionEncoding) -> Proposal:
        """Inverse of ``to_dict``."""
        decisions = tuple(int(d) for d in data["decisions"])
        return cls(
            proposal_id=int(data["proposal_id"]),
            decisions=decisions,
            architecture=encoding.decode(decisions),
            policy_version=int(data.get("policy_version", 0)),
            data=dict(data.get("data", {})),
        )


class ControllerStateError(ValueError):
    """A controller state cannot be restored (wrong schema, algorithm or space)."""


def is_usable_reward(reward: float | None) -> bool:
    """A reward a policy may learn from: a finite number."""
    return reward is not None and isinstance(reward, (int, float)) and math.isfinite(reward)


class Controller(abc.ABC):
    """A search algorithm over a decision encoding."""

    name: str = ""

    def __init__(self, encoding: DecisionEncoding, seed: int):
        self.encoding = encoding
        self.seed = seed

    @abc.abstractmethod
    def propose(self) -> Proposal:
        """Samples the next architecture to try."""

    @abc.abstractmethod
    def feedback(self, proposal: Proposal, reward: float | None = None, *, failure: str | None = None) -> None:
        """Reports the result of a proposal.

        Exactly one of ``reward`` and ``failure`` is given. A non-finite reward
        is treated as a failure; it never reaches the weights.
        """

    @abc.abstractmethod
    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue: JSON-ready, with ``schema_version``."""

    @abc.abstractmethod
    def set_state(self, state: dict[str, Any]) -> None:
        """Restores a state from ``get_state``.

        Raises:
          ControllerStateError: the state is of another schema, algorithm or space.
        """

    def stats(self) -> dict[str, float]:
        """Numbers worth plotting (baseline, entropy, ...); empty by default."""
        return {}


_REGISTRY: dict[str, Callable[..., Controller]] = {}


def register_controller(name: str):
    """Class decorator: registers a controller under ``name``."""

    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"controller {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def controller_names() -> list[str]:
    """Registered algorithm names, sorted."""
    return sorted(_REGISTRY)


def controller_class(name: str) -> Callable[..., Controller]:
    """The class registered under ``name``.

    Raises:
      ValueError: unknown name, listing the known ones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]

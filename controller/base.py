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
import json
import math
import numbers
from typing import Any

from search_space import Architecture, ArchitectureError, DecisionEncoding
from search_space.errors import UserError

STATE_SCHEMA_VERSION = 1

# What happens to a failed trial (or a non-finite reward): ``skip`` learns
# nothing from it; ``fixed`` learns from the configured failure reward.
FAILURE_SKIP = "skip"
FAILURE_FIXED = "fixed"
FAILURE_POLICIES = (FAILURE_SKIP, FAILURE_FIXED)


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


class ControllerStateError(UserError, ValueError):
    """A controller state cannot be restored (wrong schema, algorithm or space)."""


class FeedbackError(ValueError):
    """A feedback call is malformed: unknown proposal, or not exactly one of reward and failure."""


def is_usable_reward(reward: float | None) -> bool:
    """A reward a policy may learn from: a finite real number (not a bool)."""
    return isinstance(reward, numbers.Real) and not isinstance(reward, bool) and math.isfinite(reward)


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
    def set_state(self, state: dict[str, Any]) -> list[str] | None:
        """Restores a state from ``get_state``.

        Returns:
          Notes for the user about what was filled in (e.g. hyperparameters a
          state of an older version lacks), or None / an empty list.

        Raises:
          ControllerStateError: the state is of another schema, algorithm or space.
        """

    def stats(self) -> dict[str, float]:
        """Numbers worth plotting (baseline, entropy, ...); empty by default."""
        return {}

    def sample_policy(self, count: int, seed: int) -> list[tuple[int, ...]] | None:
        """``count`` decision sequences drawn from what the algorithm would propose now, for statistics.

        Changes nothing: neither the controller's state nor its next
        proposals. None (the default) for an algorithm without a policy to
        draw from (random search, evolution): a report then reads the
        distribution off its proposals.
        """
        return None


def encoding_signature(encoding: DecisionEncoding) -> dict[str, Any]:
    """A JSON-ready description of a search space and its decision sequence.

    Stored in controller states so that a state is never restored over another
    space: the space's definition, and the kind, block and choices of every point.
    """
    return {
        "definition": _json_normal(encoding.space.definition()),
        "points": [[p.kind, p.block, list(p.values)] for p in encoding.points],
    }


def _json_normal(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


class BaseController(Controller):
    """A controller with the bookkeeping every algorithm shares.

    Subclasses implement ``_sample`` (decisions for a new proposal) and
    ``_learn`` (a reward to learn from) and, where they keep state,
    ``_hparams``, ``_algorithm_state`` and ``_restore_algorithm_state``. This
    class numbers proposals, keeps the ones in flight, checks feedback, applies
    the failure policy and writes and checks the state envelope.

    Randomness is counter based: every algorithm derives the randomness of
    proposal ``i`` from ``(seed, i)`` (and its own counters), so the RNG state
    is a handful of integers. Replaying the same calls in the same order after
    ``set_state`` gives the same proposals, ids included. A controller is not
    thread-safe: call it from one thread.

    Args:
      encoding: the decision encoding of the search space.
      seed: a non-negative integer.
      failure_policy: ``"skip"`` (learn nothing from a failed trial) or
        ``"fixed"`` (learn from ``failure_reward``).
      failure_reward: the reward a failure counts as under ``"fixed"``.

    Raises:
      ValueError: a bad seed, failure policy or failure reward.
    """

    def __init__(
        self,
        encoding: DecisionEncoding,
        seed: int,
        *,
        failure_policy: str = FAILURE_SKIP,
        failure_reward: float = 0.0,
    ):
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"{type(self).__name__}: seed {seed!r} must be a non-negative integer")
        if failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"failure_policy {failure_policy!r} is unknown; allowed {', '.join(FAILURE_POLICIES)}")
        if not is_usable_reward(failure_reward):
            raise ValueError(f"failure_reward {failure_reward!r} must be a finite number")
        super().__init__(encoding, seed)
        self.failure_policy = failure_policy
        self.failure_reward = float(failure_reward)
        self._next_id = 0
        self._policy_version = 0
        self._in_flight: dict[int, Proposal] = {}
        self._num_results = 0
        self._num_failures = 0
        self._best_reward: float | None = None

    # ----- what subclasses provide ------------------------------------------------

    @abc.abstractmethod
    def _sample(self, proposal_id: int) -> tuple[list[int], dict[str, Any]]:
        """Decisions of proposal ``proposal_id`` and its JSON-ready algorithm data."""

    @abc.abstractmethod
    def _learn(self, proposal: Proposal, reward: float) -> None:
        """Learns from a finite reward (a real one, or the fixed failure reward)."""

    def _hparams(self) -> dict[str, Any]:
        """Constructor arguments that a restored state must agree with (JSON-ready)."""
        return {"failure_policy": self.failure_policy, "failure_reward": self.failure_reward}

    def _algorithm_state(self) -> dict[str, Any]:
        """The algorithm's own state (JSON-ready)."""
        return {}

    def _restore_algorithm_state(self, state: dict[str, Any]) -> None:
        """Inverse of ``_algorithm_state``; raises ControllerStateError on bad data."""

    def _algorithm_stats(self) -> dict[str, float]:
        return {}

    # ----- the protocol -----------------------------------------------------------

    def propose(self) -> Proposal:
        """Samples the next architecture; it stays in flight until its feedback."""
        proposal_id = self._next_id
        decisions, data = self._sample(proposal_id)
        decisions = tuple(int(d) for d in decisions)
        proposal = Proposal(
            proposal_id=proposal_id,
            decisions=decisions,
            architecture=self.encoding.decode(decisions),
            policy_version=self._policy_version,
            data=data,
        )
        self._next_id += 1
        self._in_flight[proposal_id] = proposal
        return proposal

    def feedback(self, proposal: Proposal, reward: float | None = None, *, failure: str | None = None) -> None:
        """Reports the result of a proposal still in flight.

        A reward that is not finite (NaN, inf) counts as a failure. A failure
        is handled by the failure policy; it never becomes a reward silently.

        Raises:
          FeedbackError: the proposal is not in flight (never proposed, or
            already answered), its decisions differ from the ones proposed, or
            not exactly one of ``reward`` and ``failure`` is given.
        """
        pid = proposal.proposal_id
        if (reward is None) == (failure is None):
            raise FeedbackError(f"feedback for proposal {pid}: give exactly one of reward and failure")
        if failure is not None and (not isinstance(failure, str) or not failure):
            raise FeedbackError(f"feedback for proposal {pid}: failure must be a non-empty message, got {failure!r}")
        if reward is not None and (not isinstance(reward, numbers.Real) or isinstance(reward, bool)):
            raise FeedbackError(f"feedback for proposal {pid}: reward must be a number, got {reward!r}")
        stored = self._in_flight.get(pid)
        if stored is None:
            flying = sorted(self._in_flight)
            shown = ", ".join(map(str, flying[:20])) + (" ..." if len(flying) > 20 else "")
            raise FeedbackError(
                f"feedback for proposal {pid}: it is not in flight (never proposed, or answered already); "
                f"in flight: {shown or 'none'}"
            )
        if tuple(proposal.decisions) != stored.decisions:
            raise FeedbackError(f"feedback for proposal {pid}: its decisions differ from the ones proposed")
        if failure is None and not math.isfinite(reward):
            failure = f"reward {reward!r} is not finite"
        del self._in_flight[pid]
        self._num_results += 1
        if failure is not None:
            self._num_failures += 1
            if self.failure_policy == FAILURE_SKIP:
                return
            value = self.failure_reward
        else:
            value = float(reward)
            if self._best_reward is None or value > self._best_reward:
                self._best_reward = value
        self._learn(stored, value)

    @property
    def in_flight(self) -> tuple[Proposal, ...]:
        """Proposals awaiting feedback, oldest first."""
        return tuple(self._in_flight[k] for k in sorted(self._in_flight))

    @property
    def policy_version(self) -> int:
        """The version new proposals are sampled by."""
        return self._policy_version

    def stats(self) -> dict[str, float]:
        """Counters, the best reward so far, and the algorithm's own numbers."""
        out = {
            "proposals": float(self._next_id),
            "results": float(self._num_results),
            "failures": float(self._num_failures),
            "in_flight": float(len(self._in_flight)),
            "policy_version": float(self._policy_version),
        }
        if self._best_reward is not None:
            out["best_reward"] = self._best_reward
        out.update(self._algorithm_stats())
        return out

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as JSON-ready data."""
        return {
            "schema_version": STATE_SCHEMA_VERSION,
            "algorithm": self.name,
            "space": encoding_signature(self.encoding),
            "hparams": _json_normal(self._hparams()),
            "seed": self.seed,
            "next_id": self._next_id,
            "policy_version": self._policy_version,
            "num_results": self._num_results,
            "num_failures": self._num_failures,
            "best_reward": self._best_reward,
            "in_flight": [p.to_dict() for p in self.in_flight],
            "algorithm_state": self._algorithm_state(),
        }

    def set_state(self, state: dict[str, Any]) -> list[str]:
        """Restores a state from ``get_state`` (of this algorithm, space and hyperparameters).

        The state's seed replaces this instance's seed: it is part of the state.
        A state that lacks hyperparameters this version has (saved before they
        existed) takes this controller's values for them, which come from the
        search's frozen config with its defaults filled in; the returned notes
        say which. A state with a hyperparameter this version does not know,
        or with a different value, is refused.

        Returns:
          One note per hyperparameter filled in.

        Raises:
          ControllerStateError: naming what does not match or is malformed.
        """
        where = f"{self.name} controller state"
        if not isinstance(state, dict):
            raise ControllerStateError(f"{where}: expected a mapping, got {type(state).__name__}")
        if state.get("schema_version") != STATE_SCHEMA_VERSION:
            raise ControllerStateError(
                f"{where}: schema_version {state.get('schema_version')!r} is not supported; "
                f"this version reads {STATE_SCHEMA_VERSION}"
            )
        if state.get("algorithm") != self.name:
            raise ControllerStateError(f"{where}: the state is of algorithm {state.get('algorithm')!r}")
        if _json_normal(state.get("space")) != _json_normal(encoding_signature(self.encoding)):
            raise ControllerStateError(f"{where}: the state was saved over a different search space")
        theirs, ours = _json_normal(state.get("hparams")), _json_normal(self._hparams())
        notes = []
        if theirs != ours:
            if not isinstance(theirs, dict):
                raise ControllerStateError(f"{where}: hparams must be a mapping, got {theirs!r}")
            missing = sorted(k for k in ours if k not in theirs)
            diff = sorted(k for k in set(theirs) | set(ours) if k not in missing and theirs.get(k) != ours.get(k))
            if diff:
                detail = "; ".join(
                    f"{k}: state {theirs[k] if k in theirs else '(absent)'!r}, "
                    f"this controller {ours[k] if k in ours else '(unknown)'!r}"
                    for k in diff
                )
                raise ControllerStateError(f"{where}: hyperparameters differ ({detail})")
            notes = [
                f"{where} was saved without hyperparameter {k} (an older version); using {ours[k]!r}" for k in missing
            ]
        try:
            seed = _count(state, "seed")
            next_id = _count(state, "next_id")
            version = _count(state, "policy_version")
            num_results = _count(state, "num_results")
            num_failures = _count(state, "num_failures")
            best = state.get("best_reward")
            if best is not None and not is_usable_reward(best):
                raise ControllerStateError(f"best_reward {best!r} is not a finite number")
            in_flight = {}
            for item in state.get("in_flight", []):
                p = Proposal.from_dict(item, self.encoding)
                if not 0 <= p.proposal_id < next_id or p.proposal_id in in_flight:
                    raise ControllerStateError(f"in-flight proposal id {p.proposal_id} is duplicated or not issued")
                in_flight[p.proposal_id] = p
            algorithm_state = state.get("algorithm_state")
            if not isinstance(algorithm_state, dict):
                raise ControllerStateError("algorithm_state must be a mapping")
        except ControllerStateError as e:
            raise ControllerStateError(f"{where}: {e}") from None
        except (ArchitectureError, KeyError, TypeError, ValueError) as e:
            raise ControllerStateError(f"{where}: malformed: {e}") from None
        try:
            self._restore_algorithm_state(algorithm_state)
        except ControllerStateError as e:
            raise ControllerStateError(f"{where}: {e}") from None
        except (ArchitectureError, KeyError, TypeError, ValueError, IndexError) as e:
            raise ControllerStateError(f"{where}: malformed algorithm_state: {type(e).__name__}: {e}") from None
        self.seed = seed
        self._next_id = next_id
        self._policy_version = version
        self._num_results = num_results
        self._num_failures = num_failures
        self._best_reward = None if best is None else float(best)
        self._in_flight = in_flight
        return notes


def check_hparam(ok: bool, name: str, value: Any, allowed: str) -> None:
    """Raises ``ValueError("name is value; must be allowed")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} is {value!r}; must be {allowed}")


def _count(state: dict[str, Any], key: str) -> int:
    value = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ControllerStateError(f"{key} {value!r} must be a non-negative integer")
    return value

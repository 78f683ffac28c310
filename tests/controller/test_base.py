"""The shared protocol: proposals, feedback checks, failure policies, the state envelope."""

import json
import math
import os
import subprocess
import sys

import pytest

from controller import (
    STATE_SCHEMA_VERSION,
    ControllerStateError,
    FeedbackError,
    Proposal,
    RandomSearch,
    RegularizedEvolution,
    controller_class,
    controller_names,
    is_usable_reward,
)
from search_space import DecisionEncoding, SearchSpace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_algorithm_is_registered_on_import():
    assert controller_names() == ["evolution", "ppo", "random", "reinforce"]
    assert controller_class("random") is RandomSearch
    with pytest.raises(ValueError, match="unknown controller 'nope'; known: evolution, ppo, random, reinforce"):
        controller_class("nope")


def test_proposal_round_trips_through_json(encoding):
    c = RandomSearch(encoding, seed=1)
    p = c.propose()
    q = Proposal.from_dict(json.loads(json.dumps(p.to_dict())), encoding)
    assert q == p
    assert p.architecture == encoding.decode(p.decisions)
    assert [c.propose().proposal_id for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize(
    "value, usable",
    [(0.3, True), (0, True), (-1.5, True), (math.nan, False), (math.inf, False), (-math.inf, False), (None, False)],
)
def test_is_usable_reward(value, usable):
    assert is_usable_reward(value) is usable


def test_is_usable_reward_rejects_bools_and_strings():
    assert not is_usable_reward(True)
    assert not is_usable_reward("0.3")


def test_feedback_needs_exactly_one_of_reward_and_failure(encoding):
    c = RandomSearch(encoding, seed=0)
    p = c.propose()
    with pytest.raises(FeedbackError, match="proposal 0: give exactly one of reward and failure"):
        c.feedback(p)
    with pytest.raises(FeedbackError, match="exactly one"):
        c.feedback(p, 0.5, failure="oom")
    with pytest.raises(FeedbackError, match="reward must be a number, got '0.5'"):
        c.feedback(p, "0.5")
    with pytest.raises(FeedbackError, match="failure must be a non-empty message"):
        c.feedback(p, failure="")
    c.feedback(p, 0.5)  # the bad calls changed nothing


def test_feedback_for_a_proposal_not_in_flight_is_an_error(encoding):
    c = RandomSearch(encoding, seed=0)
    p0, p1 = c.propose(), c.propose()
    c.feedback(p0, 0.1)
    with pytest.raises(FeedbackError, match=r"proposal 0: it is not in flight .*in flight: 1$"):
        c.feedback(p0, 0.1)
    forged = Proposal(7, p1.decisions, p1.architecture)
    with pytest.raises(FeedbackError, match="proposal 7: it is not in flight"):
        c.feedback(forged, 0.1)
    other = c.propose()
    tampered = Proposal(p1.proposal_id, other.decisions, other.architecture)
    with pytest.raises(FeedbackError, match="proposal 1: its decisions differ"):
        c.feedback(tampered, 0.1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_rewards_count_as_failures(encoding, bad):
    c = RegularizedEvolution(encoding, seed=0, population_size=4, tournament_size=2)
    c.feedback(c.propose(), bad)
    c.feedback(c.propose(), 0.25)
    stats = c.stats()
    assert stats["failures"] == 1 and stats["results"] == 2
    assert stats["population"] == 1  # skipped: never entered the population
    assert stats["best_reward"] == 0.25


def test_fixed_failure_policy_learns_the_fixed_reward_but_it_is_no_best(encoding):
    c = RegularizedEvolution(
        encoding, seed=0, population_size=4, tournament_size=2, failure_policy="fixed", failure_reward=-1.0
    )
    c.feedback(c.propose(), failure="trial crashed: OOM")
    c.feedback(c.propose(), math.nan)
    state = c.get_state()
    assert [member[2] for member in state["algorithm_state"]["population"]] == [-1.0, -1.0]
    assert "best_reward" not in c.stats()
    assert c.stats()["failures"] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": -1}, "seed -1 must be a non-negative integer"),
        ({"failure_policy": "zero"}, "failure_policy 'zero' is unknown; allowed skip, fixed"),
        ({"failure_reward": math.nan}, "failure_reward nan must be a finite number"),
    ],
)
def test_bad_constructor_arguments(encoding, kwargs, message):
    args = {"seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        RandomSearch(encoding, **args)


def test_state_is_json_ready_and_versioned(encoding):
    c = RandomSearch(encoding, seed=5)
    p = c.propose()
    state = c.get_state()
    assert json.loads(json.dumps(state)) == state
    assert state["schema_version"] == STATE_SCHEMA_VERSION
    assert state["algorithm"] == "random"
    assert state["in_flight"] == [p.to_dict()]


def _fresh_state(encoding, **kwargs):
    return json.loads(json.dumps(RandomSearch(encoding, seed=0, **kwargs).get_state()))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.update(schema_version=99), "schema_version 99 is not supported; this version reads 1"),
        (lambda s: s.update(algorithm="evolution"), "the state is of algorithm 'evolution'"),
        (lambda s: s.update(next_id=-3), "next_id -3 must be a non-negative integer"),
        (lambda s: s["hparams"].update(failure_policy="fixed"), "hyperparameters differ .*failure_policy"),
        (lambda s: s.update(in_flight=[{"proposal_id": 0, "decisions": [0]}]), "malformed: decisions: got 1"),
    ],
)
def test_set_state_rejects_bad_states_clearly(encoding, edit, message):
    state = _fresh_state(encoding)
    edit(state)
    with pytest.raises(ControllerStateError, match=message):
        RandomSearch(encoding, seed=0).set_state(state)


def test_set_state_rejects_another_space(encoding):
    state = _fresh_state(encoding)
    other = DecisionEncoding(SearchSpace(parent_window=4))
    with pytest.raises(ControllerStateError, match="saved over a different search space"):
        RandomSearch(other, seed=0).set_state(state)


def test_set_state_adopts_the_states_seed(encoding):
    a = RandomSearch(encoding, seed=11)
    b = RandomSearch(encoding, seed=0)
    b.set_state(a.get_state())
    assert b.seed == 11
    assert b.propose() == a.propose()


def test_controller_imports_only_the_search_space_of_the_project():
    """Layering: no Ray, no models, no orchestration, no experiment registry."""
    code = (
        "import sys, controller; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'proxy_trainer', 'nas', 'experiments')); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""

"""The controllers on a resource-distribution space, through the generic decision encoding, unchanged."""

import hashlib
import json

import numpy as np
import pytest

from controller import (
    ControllerConfig,
    ControllerStateError,
    EvolutionConfig,
    PolicyGradientConfig,
    ReinforceController,
    build_controller,
    controller_names,
)
from controller.base import encoding_signature
from search_space import DecisionEncoding, Scaling, SearchSpace, spinenet49
from search_space.encoding import BLOCK_REPEATS, WIDTH_MULTIPLIER

RESOURCES = dict(width_multipliers=(0.5, 0.75, 1.0, 1.25, 1.5), block_repeats=(1, 2, 3))
PROXY = Scaling(0.25, 0.25, 64, 1)
FIXED = SearchSpace(scaling=PROXY, fixed_topology="preset:spinenet49", **RESOURCES)
FULL = SearchSpace(scaling=PROXY, **RESOURCES)
CONFIG = dict(
    policy_gradient=PolicyGradientConfig(update_every=2, learning_rate=0.05),
    evolution=EvolutionConfig(population_size=4, tournament_size=2),
)


def cheap_and_shallow(arch) -> float:
    """A toy reward over the resources only: 1.0 when every block is at x0.5 with 1 repeat."""
    return float(np.mean([(b.width_multiplier == 0.5) + (b.block_repeats == 1) for b in arch.blocks]) / 2)


CASES = [(name, FIXED) for name in controller_names()] + [("reinforce", FULL), ("evolution", FULL)]


@pytest.mark.parametrize("name, space", CASES, ids=[f"{n}-{'fixed' if s is FIXED else 'full'}" for n, s in CASES])
def test_every_algorithm_proposes_members_and_learns_from_results(name, space):
    encoding = DecisionEncoding(space)
    controller = build_controller(ControllerConfig(algorithm=name, **CONFIG), encoding, seed=7)
    archs = []
    for _ in range(10):
        proposal = controller.propose()
        arch = proposal.architecture
        space.validate_architecture(arch)
        assert encoding.decode(proposal.decisions) == arch and encoding.encode(arch) is not None
        if space is FIXED:
            assert arch.topology().blocks == spinenet49().blocks
        archs.append(arch)
        controller.feedback(proposal, cheap_and_shallow(arch))
    assert len({a.fingerprint() for a in archs}) > 1
    assert any(a.has_resources for a in archs)
    stats = controller.stats()
    assert stats["results"] == 10
    if name in ("reinforce", "ppo"):
        assert stats["policy_version"] == 5  # an update every 2 results
    if name == "evolution":
        assert stats["mutated"] == 6  # the population of 4 seeded at random, then tournaments


def test_reinforce_learns_a_resource_distribution_on_a_fixed_topology():
    encoding = DecisionEncoding(FIXED)
    assert {p.kind for p in encoding.points} == {WIDTH_MULTIPLIER, BLOCK_REPEATS}
    c = ReinforceController(encoding, seed=0, training=PolicyGradientConfig(learning_rate=0.05, update_every=1))
    rewards = []
    for _ in range(120):
        p = c.propose()
        rewards.append(cheap_and_shallow(p.architecture))
        c.feedback(p, rewards[-1])
    uniform = (1 / 5 + 1 / 3) / 2  # the mean reward of uniformly drawn resources
    first, last = np.mean(rewards[:30]), np.mean(rewards[-30:])
    assert last > uniform + 0.15 and last > first, (first, last)


def test_a_state_restores_over_the_same_resource_space_only():
    encoding = DecisionEncoding(FIXED)
    config = ControllerConfig(algorithm="reinforce", **CONFIG)
    c = build_controller(config, encoding, seed=3)
    for _ in range(4):
        p = c.propose()
        c.feedback(p, cheap_and_shallow(p.architecture))
    state = json.loads(json.dumps(c.get_state()))
    restored = build_controller(config, DecisionEncoding(FIXED), seed=99)
    restored.set_state(state)
    assert restored.propose().decisions == c.propose().decisions
    for other in (FULL, SearchSpace(scaling=PROXY, fixed_topology="preset:resnet_like", **RESOURCES)):
        with pytest.raises(ControllerStateError, match="saved over a different search space"):
            build_controller(config, DecisionEncoding(other), seed=3).set_state(state)


def test_states_saved_before_resource_options_existed_still_restore():
    # The signature of the SpineNet-49 space as it was before the options were added: a snapshot
    # holding it must still be accepted (digest of its canonical JSON).
    signature = json.dumps(encoding_signature(DecisionEncoding(SearchSpace())), sort_keys=True)
    assert hashlib.sha256(signature.encode()).hexdigest().startswith("1616c5b4f2298965")

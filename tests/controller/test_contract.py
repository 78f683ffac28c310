"""One contract over every registered algorithm (Ray Tune's SaveRestoreCheckpointTest).

Propose, answer out of order, save with proposals in flight, restore into a
fresh instance, continue: the restored controller must do exactly what the
original does, and the original exactly what a controller that never saved does.
"""

import json
import math

import numpy as np
import pytest

from controller import (
    ControllerConfig,
    EvolutionConfig,
    PolicyGradientConfig,
    Proposal,
    build_controller,
    controller_names,
)

# Small sizes so that every mechanism (updates, tournaments, aging) happens within a short script.
CONFIG = ControllerConfig(
    policy_gradient=PolicyGradientConfig(update_every=2, learning_rate=0.01),
    evolution=EvolutionConfig(population_size=3, tournament_size=2),
)
# "p": propose; "fK": feedback for the K-th oldest proposal in flight; "nK": a NaN reward for it;
# "xK": a failure. Results arrive out of order, and some for proposals sampled before an update.
BEFORE_SAVE = "p p p f1 p f0 p f2 n0 p p f1"
AFTER_SAVE = "f0 p f1 p p x0 f0 p f1 f0 p p f0 p f1 f0"


def _config(name):
    return ControllerConfig(
        algorithm=name, policy_gradient=CONFIG.policy_gradient, evolution=CONFIG.evolution, failure_policy="skip"
    )


def _run(controller, script, flying, reward):
    """Plays ``script``; returns what was proposed (as dicts) and keeps ``flying`` up to date."""
    proposed = []
    for op in script.split():
        if op == "p":
            p = controller.propose()
            flying.append(p)
            proposed.append(p.to_dict())
            continue
        p = flying.pop(int(op[1:]))
        if op[0] == "f":
            controller.feedback(p, reward(p.decisions))
        elif op[0] == "n":
            controller.feedback(p, math.nan)
        else:
            controller.feedback(p, failure="trial failed: out of memory")
    return proposed


@pytest.mark.parametrize("name", controller_names())
def test_save_restore_continue(name, encoding, target_reward):
    config = _config(name)
    reference = build_controller(config, encoding, seed=7)
    ref_flying = []
    _run(reference, BEFORE_SAVE, ref_flying, target_reward)
    ref_after = _run(reference, AFTER_SAVE, ref_flying, target_reward)

    original = build_controller(config, encoding, seed=7)
    flying = []
    before = _run(original, BEFORE_SAVE, flying, target_reward)
    assert len(flying) >= 2, "the save must happen with proposals in flight"
    state = json.loads(json.dumps(original.get_state()))  # what the snapshot file holds

    restored = build_controller(config, encoding, seed=7)
    restored.set_state(state)
    restored_flying = [Proposal.from_dict(p.to_dict(), encoding) for p in flying]
    assert restored.stats() == original.stats()

    after = _run(original, AFTER_SAVE, flying, target_reward)
    restored_after = _run(restored, AFTER_SAVE, restored_flying, target_reward)

    assert restored_after == after, "the restored controller diverged from the original"
    assert after == ref_after, "saving changed what the original does"
    assert restored.get_state() == original.get_state() == reference.get_state()
    assert restored.stats() == original.stats()
    assert original.stats()["failures"] == 2
    assert len(before) + len(after) == BEFORE_SAVE.count("p") + AFTER_SAVE.count("p")
    ids = [p["proposal_id"] for p in before + after]
    assert ids == list(range(len(ids)))


@pytest.mark.parametrize("name", controller_names())
def test_same_seed_same_proposals_other_seed_other_proposals(name, encoding):
    a, b, c = (build_controller(_config(name), encoding, seed=s) for s in (3, 3, 4))
    pa = [a.propose().decisions for _ in range(3)]
    assert pa == [b.propose().decisions for _ in range(3)]
    assert pa != [c.propose().decisions for _ in range(3)]
    assert len(set(pa)) == 3


@pytest.mark.parametrize("name", controller_names())
def test_non_finite_reward_is_a_failure_and_corrupts_nothing(name, encoding, target_reward):
    """A NaN/inf reward acts exactly like a reported failure, and every number stays finite."""
    runs = []
    for bad_result in ("reward", "failure"):
        c = build_controller(_config(name), encoding, seed=2)
        flying = [c.propose() for _ in range(6)]
        for i, p in enumerate(flying):
            if i % 2:
                c.feedback(p, target_reward(p.decisions))
            elif bad_result == "reward":
                c.feedback(p, (math.nan, math.inf, -math.inf)[i // 2])
            else:
                c.feedback(p, failure="no usable reward")
        for _ in range(4):
            p = c.propose()
            c.feedback(p, target_reward(p.decisions))
        runs.append(c.get_state())
        stats = c.stats()
        assert stats["failures"] == 3
        assert all(np.isfinite(v) for v in stats.values()), stats
    assert runs[0] == runs[1]

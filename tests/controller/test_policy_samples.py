"""Controller.sample_policy: what the algorithm would propose now, drawn without changing anything."""

import collections

import numpy as np
import pytest

from controller import build_controller
from controller.config import ControllerConfig
from experiments.registry import get_experiment
from search_space import DecisionEncoding


@pytest.fixture(scope="module")
def encoding():
    return DecisionEncoding(get_experiment("synthetic_smoke").search_space)


def test_algorithms_without_a_policy_have_nothing_to_draw(encoding):
    for algorithm in ("random", "evolution"):
        controller = build_controller(ControllerConfig(algorithm=algorithm), encoding, seed=0)
        assert controller.sample_policy(4, 0) is None


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
def test_drawing_changes_neither_the_state_nor_the_next_proposals(encoding, algorithm):
    config = ControllerConfig(algorithm=algorithm)
    controller = build_controller(config, encoding, seed=3)
    twin = build_controller(config, encoding, seed=3)
    before = controller.get_state()
    draws = controller.sample_policy(16, 5)
    assert len(draws) == 16 and all(len(d) == len(encoding) for d in draws)
    for d in draws:
        encoding.decode(d)  # every draw respects the masks
    assert controller.sample_policy(16, 5) == draws  # same seed, same weights: same draws
    assert controller.sample_policy(16, 6) != draws
    assert controller.get_state() == before
    assert controller.propose().decisions == twin.propose().decisions


def test_the_batched_draws_follow_the_policy_that_proposals_follow(encoding):
    controller = build_controller(ControllerConfig(), encoding, seed=0)
    policy = controller.policy
    # Make the policy far from uniform: a strong preference at every point (rows of the head's bias).
    bias = np.zeros(policy.head_bias.shape, np.float32)
    rng = np.random.default_rng(0)
    bias[:] = rng.normal(0.0, 2.0, size=bias.shape)
    policy.head_bias.assign(bias)
    n = 300
    batched = controller.sample_policy(n, 1)
    one_by_one = [policy.sample((i, 11)).decisions for i in range(n)]
    for t in (0, 1, 2, 5, len(encoding) - 1):
        a = collections.Counter(d[t] for d in batched)
        b = collections.Counter(d[t] for d in one_by_one)
        for choice in set(a) | set(b):
            pa, pb = a[choice] / n, b[choice] / n
            # Two samples of one distribution: within 4 standard errors of their difference.
            assert abs(pa - pb) <= 4 * np.sqrt(max(pa * (1 - pa) + pb * (1 - pb), 1e-4) / n) + 1e-9, (t, choice, pa, pb)
    # The comparison means something: the first decision is far from uniform.
    top = collections.Counter(d[0] for d in batched).most_common(1)[0][1] / n
    assert top > 1 / encoding.points[0].num_choices + 0.15, top

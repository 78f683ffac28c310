"""Shared fixtures of the controller tests: the real SpineNet-49 space and a toy reward."""

import numpy as np
import pytest

from search_space import DecisionEncoding, SearchSpace, spinenet49


@pytest.fixture(scope="session")
def encoding() -> DecisionEncoding:
    """The SpineNet-49 search space's decision encoding (68 points)."""
    return DecisionEncoding(SearchSpace())


@pytest.fixture(scope="session")
def target_reward(encoding):
    """Fraction of decisions equal to the published SpineNet-49's: optimum 1.0 at SpineNet-49 only."""
    target = np.asarray(encoding.encode(spinenet49()))

    def reward(decisions) -> float:
        return float(np.mean(np.asarray(decisions) == target))

    return reward


@pytest.fixture
def learning_curve():
    """``learning_curve(controller, reward, trials)``: rewards of ``trials`` proposals, each answered at once."""

    def run(controller, reward, trials):
        rewards = []
        for _ in range(trials):
            p = controller.propose()
            r = reward(p.decisions)
            controller.feedback(p, r)
            rewards.append(r)
        return np.asarray(rewards)

    return run

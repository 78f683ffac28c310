"""Regularized evolution: random start, tournaments, one mutation, aging."""

import numpy as np

from controller import RegularizedEvolution


def _answer(c, p, reward):
    c.feedback(p, reward(p.decisions))


def test_random_until_the_population_is_seeded_then_mutated_children(encoding, target_reward):
    c = RegularizedEvolution(encoding, seed=0, population_size=5, tournament_size=2)
    first = [c.propose() for _ in range(5)]
    assert all(p.data["parent"] is None for p in first)
    for p in first:
        _answer(c, p, target_reward)
    for _ in range(20):
        child = c.propose()
        parent_id = child.data["parent"]
        members = {m[0]: m for m in c.get_state()["algorithm_state"]["population"]}
        assert parent_id in members
        parent = members[parent_id]
        assert child.architecture != encoding.decode(parent[1])
        _answer(c, child, target_reward)
    assert c.stats()["mutated"] == 20


def test_no_result_yet_means_random_proposals(encoding):
    c = RegularizedEvolution(encoding, seed=0, population_size=2, tournament_size=1)
    flying = [c.propose() for _ in range(4)]  # nothing answered: the population is empty
    assert [p.data["parent"] for p in flying] == [None] * 4


def test_the_oldest_dies_even_when_it_is_the_best(encoding):
    c = RegularizedEvolution(encoding, seed=0, population_size=3, tournament_size=3)
    rewards = [0.9, 0.1, 0.2, 0.3]
    for r in rewards:
        c.feedback(c.propose(), r)
    population = c.get_state()["algorithm_state"]["population"]
    assert [m[0] for m in population] == [1, 2, 3]
    assert [m[2] for m in population] == [0.1, 0.2, 0.3]
    # A tournament over the whole population always picks its best member.
    assert {c.propose().data["parent"] for _ in range(5)} == {3}


def test_evolution_improves_on_a_toy_reward(encoding, target_reward, learning_curve):
    c = RegularizedEvolution(encoding, seed=0, population_size=20, tournament_size=5)
    rewards = learning_curve(c, target_reward, 400)
    assert rewards[-100:].mean() > rewards[:20].mean() + 0.2
    assert np.max(rewards) > 0.6

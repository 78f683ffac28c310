"""bench/bench_controllers.py: its statistics, its rewards, and that no two variants share draws."""

import numpy as np
import pytest

from bench import bench_controllers as bench
from search_space import SearchSpace, spinenet49


def test_summarize_gives_median_quartiles_and_range():
    s = bench.summarize([0.5, 0.1, 0.3, 0.2, 0.4])
    assert s == {"median": 0.3, "q1": 0.2, "q3": 0.4, "min": 0.1, "max": 0.5, "n": 5}
    assert bench.summarize([1.0, 2.0])["median"] == 1.5


def test_superiority_is_the_normalised_mann_whitney_u():
    assert bench.superiority([3, 4], [1, 2]) == 1.0
    assert bench.superiority([1, 2], [3, 4]) == 0.0
    assert bench.superiority([1, 2], [1, 2]) == 0.5
    a, b = np.random.default_rng(0).normal(size=7), np.random.default_rng(1).normal(size=5)
    # U counted by hand: pairs won plus half the ties.
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    assert bench.superiority(a, b) == pytest.approx(u / 35)
    assert bench.superiority(a, b) + bench.superiority(b, a) == pytest.approx(1.0)


def test_best_so_far_reports_the_true_reward_of_the_best_observed():
    observed = [0.1, 0.5, 0.3, 0.5, 0.6]
    true = [0.2, 0.1, 0.9, 0.8, 0.4]
    # Trial 3's true 0.9 is never selected: its observed reward was not the best.
    np.testing.assert_allclose(bench.best_so_far(observed, true), [0.2, 0.1, 0.1, 0.1, 0.4])
    np.testing.assert_allclose(bench.best_so_far(true, true), np.maximum.accumulate(true))


def test_goal_check_needs_both_margins():
    medians = {"r": 0.5, "e": 0.4, "x": 0.6}
    assert bench.goal_check(medians, "r", "e", "x") == pytest.approx(
        {"over_evolution": 0.1, "over_random": -0.1, "met": False}
    )
    assert bench.goal_check({"r": 0.5, "e": 0.5, "x": 0.5}, "r", "e", "x")["met"]


def test_summarise_and_compare_runs():
    def run(label, seed, values):
        return bench.Run("needle", label, seed, values, values, [], [])

    runs = [run("random", s, [0.0] * 9 + [0.1 * s]) for s in range(3)]
    runs += [run("evolution", s, [0.2, 0.3, 0.0, 0.0, 0.0]) for s in range(3)]
    runs += [run("reinforce", s, [0.1, 0.1, 0.1, 0.1, 0.25 + 0.1 * s]) for s in range(3)]
    summary = bench.summarise_runs(runs, trials=5, random_trials=10)
    assert summary["needle"]["random"]["per_seed"] == pytest.approx([0.0, 0.1, 0.2])
    assert summary["needle"]["evolution"]["best"]["median"] == pytest.approx(0.3)
    assert summary["needle"]["reinforce"]["median_at_trials"] == {}  # no checkpoint within 5 trials
    goal = bench.compare(summary, trials=5)["needle"]["reinforce"]
    assert goal["met"] and goal["over_evolution"] == pytest.approx(0.05)
    assert goal["p_over_evolution"] == pytest.approx(6 / 9)  # 0.25 below all three 0.3s, 0.35 and 0.45 above


def test_every_variant_reward_and_seed_draws_its_own_seeds():
    seeds = {
        bench.run_seed(label, reward, seed)
        for label in bench.VARIANTS
        for reward in bench.REWARDS
        for seed in bench.REPORT_SEEDS + bench.TUNING_SEEDS
    }
    assert len(seeds) == len(bench.VARIANTS) * len(bench.REWARDS) * 10
    assert bench.run_seed("reinforce", "needle", 3) == bench.run_seed("reinforce", "needle", 3)
    assert not set(bench.REPORT_SEEDS) & set(bench.TUNING_SEEDS)


def test_rewards_peak_where_documented():
    space = SearchSpace()
    target = spinenet49()
    for name in ("match_spinenet49", "deceptive_trap", "needle"):
        assert bench.REWARDS[name].fn(target, space) == 1.0, name
    assert bench.noisy_ap(target, space) == pytest.approx(0.35)
    assert bench.REWARDS["noisy_ap"].noise_std == bench.NOISE_STD > 0


def test_variant_parsing():
    parsed = bench.parse_variants("random,x=reinforce:@sample_efficient;policy_gradient.update_every=2")
    assert parsed == {"random": ("random", ""), "x": ("reinforce", "@sample_efficient,policy_gradient.update_every=2")}
    config = bench.controller_config(*parsed["x"])
    assert config.algorithm == "reinforce" and config.policy_gradient.update_every == 2
    assert config.policy_gradient.priority_queue_size > 0  # from the sample-efficient setting
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        bench.parse_variants("nope")


def test_proxy_noise_reward_uses_the_stored_proxy_checks_seed_std():
    import json
    import os

    path = os.path.join(bench.ROOT, "bench", "results", "proxy_check.json")
    with open(path) as f:
        measured = json.load(f)["result"]["noise"]["proxy"]["seed_std"]
    spec = bench.REWARDS["noisy_ap_proxy_noise"]
    assert spec.noise_std == pytest.approx(measured, abs=1e-4)
    assert spec.fn is bench.noisy_ap and spec.noise_std != bench.REWARDS["noisy_ap"].noise_std

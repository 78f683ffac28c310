"""The Pareto front of a search's trials (status, plot): which trials count, the costs, the target."""

import dataclasses

from experiments.overrides import apply_overrides
from experiments.registry import get_experiment
from nas.pareto import search_front
from search_space import spinenet49
from search_space.serialization import architecture_to_dict


@dataclasses.dataclass
class FakeTrial:
    trial_id: int
    metrics: dict | None
    reward: float | None = None
    status: str = "completed"
    reused_from: int | None = None
    fingerprint: str = "f"
    architecture: dict | None = None


def test_front_counts_trained_trials_and_is_non_dominated():
    config = get_experiment("synthetic_smoke")
    trials = [
        FakeTrial(0, {"AP": 0.30, "params": 10, "multiply_adds": 100}, 0.30),
        FakeTrial(1, {"AP": 0.20, "params": 5, "multiply_adds": 50}, 0.20),
        FakeTrial(2, {"AP": 0.10, "params": 20, "multiply_adds": 200}, 0.10),  # dominated by 0 and 1
        FakeTrial(3, {"AP": 0.50, "params": 30, "multiply_adds": 300}, 0.50),
        FakeTrial(4, {"AP": 0.90, "params": 1, "multiply_adds": 1}, 0.90, reused_from=3),  # reused: not counted
        FakeTrial(5, None, None, status="failed"),
        FakeTrial(6, {"AP": "nan", "params": 1, "multiply_adds": 1}, None),  # not a number: not counted
    ]
    front = search_front(config, trials)
    assert front["cost"] == "multiply_adds" and front["metric"] == "AP" and front["cost_target"] is None
    assert [p["trial_id"] for p in front["points"]] == [0, 1, 2, 3]
    assert [front["points"][i]["trial_id"] for i in front["front"]] == [1, 0, 3]
    assert [front["points"][i]["trial_id"] for i in search_front(config, trials, "params")["front"]] == [1, 0, 3]


def test_cost_aware_reward_gives_its_cost_and_target_and_the_cost_model_fills_missing_costs():
    config = apply_overrides(
        get_experiment("synthetic_smoke"), {"reward.cost": "params", "reward.cost_target": 2_000_000.0}
    )
    arch = spinenet49()
    trials = [FakeTrial(0, {"AP": 0.3}, 0.3, fingerprint=arch.fingerprint(), architecture=architecture_to_dict(arch))]
    front = search_front(config, trials)
    assert front["cost"] == "params" and front["cost_target"] == 2_000_000.0
    expected = config.model.cost(arch).params
    assert front["points"][0]["cost"] == expected > 0

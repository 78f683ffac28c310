"""The pieces of the search report: the Pareto front, decision statistics, reading the controller's events."""

import os
import random

import pytest

from experiments.registry import get_experiment
from nas.decision_stats import Heatmap, biggest_changes, decision_heatmaps
from nas.events import SearchEvents, read_scalars
from nas.pareto import pareto_front
from search_space import DecisionEncoding, sample_decisions, spinenet49


@pytest.mark.parametrize("seed", range(5))
def test_the_pareto_front_is_exactly_the_undominated_points(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    costs = [rng.choice([1.0, 2.0, 3.0, rng.uniform(0, 10)]) for _ in range(n)]
    values = [rng.choice([0.1, 0.2, rng.uniform(0, 1)]) for _ in range(n)]

    def dominated(i):
        return any(
            costs[j] <= costs[i] and values[j] >= values[i] and (costs[j] < costs[i] or values[j] > values[i])
            for j in range(n)
        )

    front = pareto_front(costs, values)
    undominated = {i for i in range(n) if not dominated(i)}
    # Of points equal in both, only the first is on the front.
    firsts = {
        i for i in undominated if not any(j < i and (costs[j], values[j]) == (costs[i], values[i]) for j in range(n))
    }
    assert set(front) == firsts
    assert [costs[i] for i in front] == sorted(costs[i] for i in front)
    assert all(values[a] < values[b] for a, b in zip(front, front[1:]))


def test_heatmaps_count_the_choices_and_the_parents_levels():
    space = get_experiment("synthetic_smoke").search_space
    encoding = DecisionEncoding(space)
    arch = spinenet49().with_scaling(space.scaling)
    heatmaps = {h.kind: h for h in decision_heatmaps(encoding, [encoding.encode(arch)] * 3)}
    assert set(heatmaps) == {"level", "level_shift", "block_fn", "parents"}
    for h in heatmaps.values():
        for shares in h.shares:
            assert sum(s for s in shares if s is not None) == pytest.approx(1.0)
    # SpineNet-49's P3 output block: its parents are at the levels of its two parent entries.
    levels = [s.level for s in arch.stem] + [b.level for b in arch.blocks]
    p3 = next(b for b in arch.blocks if b.is_output and b.level == 3)
    parents = dict(zip(heatmaps["parents"].rows, heatmaps["parents"].shares))["P3 output block"]
    expected = {lv: sum(levels[p] == lv for p in p3.parents) / 2 for lv in range(2, 8)}
    assert dict(zip(range(2, 8), parents)) == expected
    # An output block has no L2 choice: a dash, not a zero.
    level = heatmaps["level"]
    assert level.shares[level.rows.index(f"block {len(arch.stem) + space.num_intermediate} (output)")][0] is None


def test_biggest_changes_name_what_moved_and_ignore_chance():
    columns = ("L2", "L3", "L4", "L5", "L6", "L7")
    start = Heatmap("parents", "t", ("P3 output block",), columns, ((0.2, 0.2, 0.2, 0.2, 0.1, 0.1),), 200, (400,))
    now = Heatmap("parents", "t", ("P3 output block",), columns, ((0.5, 0.4, 0.1, 0.0, 0.0, 0.0),), 200, (400,))
    assert biggest_changes([start], [now]) == [
        "P3 output block takes a parent at L2 or L3 90% of the time (40% at the start)"
    ]
    few = Heatmap("parents", "t", ("P3 output block",), columns, ((0.5, 0.4, 0.1, 0.0, 0.0, 0.0),), 5, (10,))
    fewer = Heatmap("parents", "t", ("P3 output block",), columns, ((0.2, 0.2, 0.2, 0.2, 0.1, 0.1),), 5, (10,))
    assert biggest_changes([fewer], [few]) == []  # 10 parents each: a move of 50 points is within chance
    assert biggest_changes([start], [start]) == []


def test_random_proposals_give_flat_heatmaps():
    encoding = DecisionEncoding(get_experiment("synthetic_smoke").search_space)
    rng = random.Random(0)
    first = decision_heatmaps(encoding, [sample_decisions(encoding, rng) for _ in range(200)])
    latest = decision_heatmaps(encoding, [sample_decisions(encoding, rng) for _ in range(200)])
    assert biggest_changes(first, latest) == []


def test_the_controllers_events_read_back_without_tensorflow(tmp_path):
    import subprocess
    import sys

    events = SearchEvents(str(tmp_path))
    for step in range(30):
        events.scalars(step, {"controller/baseline": step / 10, "controller/entropy": 80.0 - step})
    events.close()
    scalars = read_scalars(str(tmp_path))
    assert scalars["controller/baseline"] == {s: pytest.approx(s / 10) for s in range(30)}
    assert scalars["controller/entropy"][29] == 51.0
    # A file cut in the middle of a record (a writer killed): the records before it.
    (name,) = [n for n in os.listdir(tmp_path) if n.startswith("events.out")]
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) - 7])
    assert sorted(read_scalars(str(tmp_path))["controller/baseline"]) == list(range(29))
    assert read_scalars(str(tmp_path / "none")) == {}
    code = f"import sys; from nas.events import read_scalars; read_scalars({str(tmp_path)!r}); print('tensorflow' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_device_hours_counts_every_run_of_a_trial_and_not_one_cut_short():
    from nas.report_data import device_hours

    class Store:
        records = [
            {"event": "started", "trial_id": 0, "time": 0.0},
            {"event": "rung", "trial_id": 0, "time": 100.0},  # a multi-fidelity trial promoted at its first rung
            {"event": "started", "trial_id": 0, "time": 110.0},
            {"event": "completed", "trial_id": 0, "time": 410.0},
            {"event": "started", "trial_id": 1, "time": 0.0},
            {"event": "attempt_failed", "trial_id": 1, "time": 60.0},
            {"event": "started", "trial_id": 2, "time": 500.0},
            {"event": "run", "time": 900.0},  # the driver stopped with trial 2 running: not counted
            {"event": "started", "trial_id": 2, "time": 1000.0},
            {"event": "completed", "trial_id": 2, "time": 1180.0},
        ]

    assert device_hours(Store(), 2.0) == pytest.approx((100 + 300 + 60 + 180) * 2 / 3600)

"""Multi-fidelity search (search.fidelity=asha): promotions, rewards of stopped trials, retries, status."""

import json
import os
import random

import pytest

from experiments.overrides import ConfigError, apply_overrides
from nas.evaluators import run_trial
from nas.executors import Outcome
from nas.fidelity import MIN_CALIBRATION_PAIRS, RungPlan, calibrate, promoted, summary
from nas.search_runner import SearchError, open_search, run_search, start_or_resume
from nas.trial_store import TrialStore
from nas.workdir import Workdir, config_checksum, fixed_part
from tests.nas.test_search_loop import make_config
from tests.nas.toy_evaluators import curve_ap

RUNGS = (1.0, 2.0, 5.0)


def asha_config(**overrides):
    base = {
        "controller.algorithm": "random",  # cheap proposals; the resume tests use the RNN controller
        "search.fidelity": "asha",
        "search.rungs": RUNGS,
        "search.max_trials": 16,
        "search.reuse_results": False,
    }
    base.update(overrides)
    return make_config("curves", **base)


def asha_history(workdir):
    """What must not change across interruptions, rungs included."""
    with TrialStore(os.path.join(workdir, "trials.jsonl"), readonly=True) as store:
        return [
            (t.trial_id, t.fingerprint, t.seed, t.status, t.reward, [(e["rung"], e["metric"], e["decision"]) for e in t.rungs])
            for t in sorted(store.trials.values(), key=lambda t: t.trial_id)
        ]  # fmt: skip


# ----- the pure parts --------------------------------------------------------------------------


def test_promotion_is_the_top_fraction_of_the_results_so_far():
    assert promoted(0.1, [], 3)  # the first at a rung: nothing to compare with
    assert promoted(0.5, [0.5], 3) and not promoted(0.4, [0.5], 3)
    earlier = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert [promoted(v, earlier, 3) for v in (0.44, 0.43, 0.6)] == [True, False, True]  # 2/3 quantile: 0.4333...
    assert promoted(0.36, earlier, 2) and not promoted(0.36, earlier, 4)  # cutoffs 0.35 and 0.475


def test_calibration_is_monotone_and_needs_enough_pairs():
    pairs = [(0.01, 0.05), (0.02, 0.30), (0.03, 0.20), (0.05, 0.40), (0.08, 0.35)]
    assert len(pairs) == MIN_CALIBRATION_PAIRS
    assert calibrate(0.02, pairs[:-1]) is None
    # Isotonic: (0.02, 0.30) and (0.03, 0.20) pool to 0.25, (0.05, 0.40) and (0.08, 0.35) to 0.375.
    assert calibrate(0.02, pairs) == pytest.approx(0.25) and calibrate(0.03, pairs) == pytest.approx(0.25)
    assert calibrate(0.065, pairs) == pytest.approx(0.375) and calibrate(0.5, pairs) == pytest.approx(0.375)
    assert calibrate(0.005, pairs) == pytest.approx(0.025)  # proportional below the lowest point
    assert calibrate(0.0, pairs) == 0.0
    values = [calibrate(x / 1000, pairs) for x in range(0, 120)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_rungs_must_end_at_the_schedule(tmp_path):
    with pytest.raises(ConfigError, match="must end at trainer.epochs"):
        asha_config(**{"search.rungs": (1.0, 2.0)}).validate()
    with pytest.raises(ConfigError, match="ascending"):
        asha_config(**{"search.rungs": (2.0, 1.0, 5.0)}).validate()
    config = make_config(**{"search.fidelity": "asha"})  # default rungs: 1/10, 1/2 and all of 5 epochs
    assert config.fidelity_rungs() == (0.5, 2.5, 5.0)
    with pytest.raises(SearchError, match="takes no 'epochs' argument"):
        start_or_resume(make_config(**{"search.fidelity": "asha"}), str(tmp_path / "s"), quiet=True)
    assert not os.path.exists(tmp_path / "s")


def test_a_search_freezes_its_default_rungs_and_keeps_them_on_resume(tmp_path):
    """The default rungs are written into the frozen config: a later change of the default (as from 1/5,
    2/5, 1 to 1/10, 1/2, 1) leaves a running search's rungs alone, and a search created before rungs were
    frozen resumes with the default of its time."""
    config = make_config(
        "curves", **{"search.fidelity": "asha", "search.max_trials": 4, "controller.algorithm": "random"}
    )
    wd = str(tmp_path / "s")
    start_or_resume(config, wd, quiet=True)
    with open(os.path.join(wd, "config.json")) as f:
        assert json.load(f)["search"]["rungs"] == [0.5, 2.5, 5.0]
    more = apply_overrides(config, {"search.max_trials": 6})  # the same experiment, its rungs left to the default
    start_or_resume(more, wd, quiet=True)
    assert Workdir(wd).config().search.rungs == (0.5, 2.5, 5.0)
    with pytest.raises(SearchError, match="search.rungs"):
        start_or_resume(apply_overrides(config, {"search.rungs": (1.0, 5.0)}), wd, quiet=True)

    # A search of an older version: rungs left empty in its frozen config (checksum as that version wrote it).
    old = str(tmp_path / "old")
    start_or_resume(config, old, quiet=True)
    with open(os.path.join(old, "config.json")) as f:
        frozen = json.load(f)
    frozen["search"]["rungs"] = []
    with open(os.path.join(old, "config.json"), "w") as f:
        json.dump(frozen, f)
    with open(os.path.join(old, "search.json")) as f:
        meta = json.load(f)
    meta["fixed_config_sha256"] = config_checksum(fixed_part(frozen))
    with open(os.path.join(old, "search.json"), "w") as f:
        json.dump(meta, f)
    assert Workdir(old).config().search.rungs == (1.0, 2.0, 5.0)
    start_or_resume(more, old, quiet=True)  # the experiment as it is today resumes it, with its old rungs
    with TrialStore(os.path.join(old, "trials.jsonl"), readonly=True) as store:
        assert len(store.trials) == 6
        new = [t for t in store.trials.values() if t.trial_id >= 4]  # the trials proposed after the resume
        epochs = {e["epochs"] for t in new for e in t.rungs} | {t.fidelity["epochs"] for t in new}
    assert 1.0 in epochs and epochs <= {1.0, 2.0, 5.0}  # every new trial met rung 0 at 1 epoch, not 0.5


# ----- the loop, results arriving out of order ------------------------------------------------------


class ShuffledExecutor:
    """Runs ``capacity`` trials "at once": each ``wait`` finishes one of them chosen at random (seeded),
    through the real ``run_trial``; ``die`` names (trial id, epochs) attempts whose worker dies once."""

    def __init__(self, config_dict, capacity=4, seed=0, die=()):
        self.capacity, self._rng, self._die = capacity, random.Random(seed), set(die)
        self._evaluator = config_dict["search"]["evaluator"]
        self.tasks, self.submitted = [], []

    @property
    def running(self):
        return len(self.tasks)

    def submit(self, task):
        self.tasks.append(task)
        self.submitted.append(task)

    def wait(self, timeout):
        if not self.tasks:
            return []
        task = self.tasks.pop(self._rng.randrange(len(self.tasks)))
        if (task.trial_id, task.epochs) in self._die:
            self._die.discard((task.trial_id, task.epochs))
            return [Outcome(task, error="worker died: the node was lost", kind="worker_died")]
        return [Outcome(task, result=run_trial(self._evaluator, task.architecture, task.seed, task.trial_dir, None, task.epochs, task.final_rung))]  # fmt: skip

    def shutdown(self):
        pass


def run_with(executor_factory, config, workdir):
    import nas.search_runner as runner

    built = []

    def build(cfg, address):
        from experiments.overrides import config_to_dict

        built.append(executor_factory(config_to_dict(cfg)))
        return built[-1]

    original = runner.build_executor
    runner.build_executor = build
    try:
        with open_search(config, workdir) as search:
            run_search(search, quiet=True)
    finally:
        runner.build_executor = original
    return built[-1]


def test_out_of_order_results_promote_the_top_third_and_continue_from_checkpoints(tmp_path):
    wd = str(tmp_path / "s")
    executor = run_with(lambda c: ShuffledExecutor(c, capacity=4, seed=3), asha_config(), wd)
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        trials = sorted(store.trials.values(), key=lambda t: t.trial_id)
        records = store.records
    assert all(t.status == "completed" for t in trials) and len(trials) == 16
    # Results arrived out of order (not in the order the trials were proposed).
    finished = [r["trial_id"] for r in records if r["event"] in ("rung", "completed")]
    assert finished != sorted(finished)
    # Every promotion was decided on the results recorded at its rung before it, in the log's order.
    seen = {0: [], 1: [], 2: []}
    for r in records:
        entry = r if r["event"] == "rung" else r.get("fidelity") if r["event"] == "completed" else None
        if entry is None:
            continue
        rung, reward = entry["rung"], entry.get("reward", entry.get("raw_reward"))
        if entry["decision"] == "promoted":
            assert promoted(reward, seen[rung], 3)
        elif entry["decision"] == "stopped":
            assert not promoted(reward, seen[rung], 3)
        seen[rung].append(reward)
    assert len(seen[0]) == 16 and 0 < len(seen[2]) < len(seen[1]) < 16
    # Each trial trained once to each rung it reached, continuing from its own checkpoint: the epochs it
    # trained add up to its last rung, and each attempt asked for the next rung.
    for t in trials:
        attempts = [task.epochs for task in executor.submitted if task.trial_id == t.trial_id]
        assert attempts == list(RUNGS[: len(t.rungs)])
        assert [e["metric"] for e in t.rungs] == [curve_ap(t.architecture, e) for e in attempts]
        assert t.fidelity["decision"] == ("final" if len(t.rungs) == 3 else "stopped")
    info = summary(store, RungPlan(RUNGS))
    assert [r["evaluated"] for r in info["rungs"]] == [16, len(seen[1]), len(seen[2])]
    assert info["epochs_full"] == 16 * 5 and info["epochs_spent"] < info["epochs_full"]
    assert info["epochs_spent"] == sum(RUNGS[len(t.rungs) - 1] for t in trials)


@pytest.mark.parametrize("low_fidelity", ["calibrated", "raw", "skip"])
def test_the_reward_of_a_stopped_trial(tmp_path, low_fidelity):
    wd = str(tmp_path / "s")
    config = asha_config(**{"reward.low_fidelity": low_fidelity, "search.max_trials": 24})
    start_or_resume(config, wd, quiet=True)
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        trials = sorted(store.trials.values(), key=lambda t: t.trial_id)
    final = [t for t in trials if t.fidelity["decision"] == "final"]
    stopped = [t for t in trials if t.fidelity["decision"] == "stopped"]
    assert final and stopped
    for t in final:
        assert t.reward == t.metrics["AP"] == t.rungs[-1]["metric"] and t.fidelity["reward_source"] == "final"
    calibrated = 0
    for t in stopped:
        f = t.fidelity
        assert f["raw_reward"] == t.metrics["AP"] == t.rungs[-1]["metric"]
        if low_fidelity == "skip":
            assert t.reward is None and f["reward_source"] == "skip"
        elif f["calibrated"]:
            calibrated += 1
            assert low_fidelity == "calibrated" and f["reward_source"] == "calibrated"
            assert f["calibration_pairs"] >= MIN_CALIBRATION_PAIRS and t.reward == f["calibrated_metric"]
            # The mapping in force then: trials that finished both rungs, recorded before this one.
            pairs = [
                (next(e["metric"] for e in u.rungs if e["rung"] == f["rung"]), u.rungs[-1]["metric"])
                for u in final
                if u.rungs[-1]["seq"] < t.rungs[-1]["seq"]
            ]
            assert len(pairs) == f["calibration_pairs"] and t.reward == calibrate(f["raw_reward"], pairs)
        else:
            assert t.reward == f["raw_reward"] and f["reward_source"] == "raw"
    assert (calibrated > 0) == (low_fidelity == "calibrated")
    best = store.best(1)[0]
    assert best.fidelity["decision"] == "final"  # a stopped trial's estimate is never the best found


def test_a_worker_dying_during_a_promoted_continuation_is_retried_from_the_checkpoint(tmp_path):
    wd = str(tmp_path / "s")
    config = asha_config(**{"search.max_trials": 6})
    die = {(0, 2.0), (0, 5.0)}  # trial 0 is promoted (the first at each rung); both continuations die once
    executor = run_with(lambda c: ShuffledExecutor(c, capacity=1, die=die), config, wd)
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        t0 = store.trials[0]
        failed = [r for r in store.records if r["event"] == "attempt_failed"]
    assert [task.epochs for task in executor.submitted if task.trial_id == 0] == [1.0, 2.0, 2.0, 5.0, 5.0]
    # Each rung has its own attempts (max_attempts=2 per rung), and none is counted against another.
    assert len(failed) == 2 and t0.status == "completed" and t0.fidelity["decision"] == "final"
    assert [(e["rung"], e["decision"]) for e in t0.rungs] == [(0, "promoted"), (1, "promoted"), (2, "final")]
    assert t0.reward == curve_ap(t0.architecture, 5.0)
    # The dead attempts trained nothing the next attempt repeated: the checkpoint is at the rung asked for.
    calls = [n for n in os.listdir(os.path.join(wd, "trials", "000000")) if n.startswith("called-")]
    assert len(calls) == 3

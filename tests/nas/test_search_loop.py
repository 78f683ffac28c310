"""The search loop in this process (LocalExecutor): state, resume, reuse, failures."""

import json
import os
import shutil

import pytest

from experiments.overrides import apply_overrides
from experiments.registry import get_experiment
from nas.search_runner import SearchError, start_or_resume
from nas.trial_store import TrialLogError, TrialStore, read_records
from nas.workdir import Workdir, WorkdirError

TOY = "tests.nas.toy_evaluators"


def make_config(evaluator="deterministic", **overrides):
    base = {
        "search.executor": "local",
        "search.evaluator": f"{TOY}:{evaluator}",
        "search.max_trials": 12,
        "controller.algorithm": "reinforce",
        "controller.policy_gradient.update_every": 3,
        # No periodic HTML report unless a test asks for one (tests/nas/test_report.py, the real ASHA search
        # of tests/nas/test_fidelity_e2e.py): drawing it costs many times what these toy trials do.
        "search.report_every": 0,
    }
    base.update(overrides)
    return apply_overrides(get_experiment("spinenet49_coco_proxy"), base)


def history(workdir):
    """What must not change across interruptions: trial, architecture, seed, status, reward."""
    with TrialStore(os.path.join(workdir, "trials.jsonl"), readonly=True) as store:
        return [
            (t.trial_id, t.fingerprint, t.seed, t.status, t.reward, t.reused_from)
            for t in sorted(store.trials.values(), key=lambda t: t.trial_id)
        ]


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """One uninterrupted 12-trial search: the reference history."""
    wd = str(tmp_path_factory.mktemp("whole") / "s")
    start_or_resume(make_config(**{"search.snapshot_every": 2}), wd, quiet=True)
    return wd


def test_a_search_runs_and_writes_its_state(tmp_path):
    wd = str(tmp_path / "s")
    summary = start_or_resume(make_config(), wd, quiet=True)
    assert summary["completed"] == 12 and summary["failed"] == 0
    files = set(os.listdir(wd))
    assert {"config.json", "search.json", "trials.jsonl", "snapshots", "trials", "tensorboard"} <= files
    assert os.listdir(os.path.join(wd, "snapshots"))
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(wd, "tensorboard")))
    frozen = json.load(open(os.path.join(wd, "config.json")))
    assert frozen["search"]["evaluator"] == f"{TOY}:deterministic"
    best = summary["best_reward"]
    assert best == max(r for *_, r, _ in [(h[0], h[4], h[5]) for h in history(wd)] if r is not None)


def test_resume_continues_to_the_same_history_as_one_run(tmp_path, whole_run):
    whole = whole_run
    parts = str(tmp_path / "parts")
    start_or_resume(make_config(**{"search.max_trials": 5}), parts, quiet=True)
    # A runtime key may change on resume; the rest of the config is frozen.
    start_or_resume(make_config(), parts, quiet=True)
    assert history(parts) == history(whole)


@pytest.mark.parametrize("cut_fraction", [0.3, 0.7, 0.97])
@pytest.mark.parametrize("keep_snapshots", [True, False])
def test_a_crash_at_any_record_resumes_to_the_same_history(tmp_path, whole_run, cut_fraction, keep_snapshots):
    """A crash leaves a prefix of the log (maybe a torn line) and snapshots no newer than it."""
    whole = whole_run
    records, _ = read_records(os.path.join(whole, "trials.jsonl"))
    cut = int(len(records) * cut_fraction)
    crashed = str(tmp_path / "crashed")
    shutil.copytree(whole, crashed)
    with open(os.path.join(whole, "trials.jsonl"), "rb") as f:
        lines = f.read().split(b"\n")
    with open(os.path.join(crashed, "trials.jsonl"), "wb") as f:
        f.write(b"\n".join(lines[:cut]) + b"\n" + lines[cut][: len(lines[cut]) // 2])  # torn last line
    snap_dir = os.path.join(crashed, "snapshots")
    for name in os.listdir(snap_dir):
        if not keep_snapshots or int(name[5:13]) > cut:
            os.remove(os.path.join(snap_dir, name))
    start_or_resume(make_config(**{"search.snapshot_every": 2}), crashed, quiet=True)
    assert history(crashed) == history(whole)
    # Nothing completed was trained twice, nothing was lost.
    completed = [h for h in history(crashed) if h[3] == "completed"]
    assert len(completed) == 12


def test_a_corrupt_snapshot_falls_back_to_an_older_one(tmp_path, whole_run):
    whole = whole_run
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 6}), wd, quiet=True)
    snaps = sorted(os.listdir(os.path.join(wd, "snapshots")))
    newest = os.path.join(wd, "snapshots", snaps[-1])
    with open(newest, "w") as f:
        f.write('{"schema_version": 1, "log_seq": ')
    summary = start_or_resume(make_config(), wd, quiet=True)
    assert any("corrupt" in w for w in summary["warnings"])
    assert os.path.exists(newest + ".corrupt")  # kept for inspection, never deleted
    assert history(wd) == history(whole)


def test_identical_architectures_are_trained_once(tmp_path):
    # A tiny space: duplicates are frequent.
    config = make_config(
        **{
            "controller.algorithm": "random",
            "search_space.level_allocation": [[4, 1]],
            "search_space.output_levels": [3, 4, 5],
            "search_space.level_shifts": [0],
            "search_space.block_fns": ["bottleneck"],
            "search.max_trials": 30,
        }
    )
    wd = str(tmp_path / "s")
    start_or_resume(config, wd, quiet=True)
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        trials = list(store.trials.values())
    reused = [t for t in trials if t.reused_from is not None]
    assert reused, "the tiny space should have produced duplicates"
    for t in reused:
        source = store.trials[t.reused_from]
        assert source.fingerprint == t.fingerprint and t.reward == source.reward
        assert not os.path.exists(os.path.join(wd, "trials", f"{t.trial_id:06d}"))
    calls = {}
    for t in trials:
        d = os.path.join(wd, "trials", f"{t.trial_id:06d}")
        if os.path.isdir(d):
            calls[t.fingerprint] = calls.get(t.fingerprint, 0) + len(
                [n for n in os.listdir(d) if n.startswith("called-")]
            )
    assert all(n == 1 for n in calls.values()), calls


def test_failing_evaluators_are_retried_then_recorded(tmp_path):
    wd = str(tmp_path / "raise")
    summary = start_or_resume(
        make_config("raises", **{"search.max_trials": 4, "search.max_attempts": 2}), wd, quiet=True
    )
    assert summary["failed"] == 4 and summary["completed"] == 0
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        for t in store.trials.values():
            assert t.status == "failed"
            assert "RuntimeError: evaluator exploded on purpose" in t.error
            assert t.attempts == 2
        events = [r["event"] for r in store.records]
    assert events.count("attempt_failed") == 4
    assert os.path.exists(os.path.join(wd, "trials", "000000", "error_attempt1.txt"))


def test_nan_metrics_become_failures_not_rewards_and_are_not_retried(tmp_path):
    wd = str(tmp_path / "nan")
    summary = start_or_resume(
        make_config("returns_nan", **{"search.max_trials": 3, "search.max_attempts": 3}), wd, quiet=True
    )
    assert summary["failed"] == 3
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        assert all("metric 'AP' is 'nan'" in t.error for t in store.trials.values())
        assert all(t.reward is None and t.attempts == 1 for t in store.trials.values())


def test_a_non_finite_loss_fails_the_trial_at_once_without_a_retry(tmp_path):
    """Non-finite results are not retried (the same seed repeats them); crashes are (see above)."""
    wd = str(tmp_path / "diverges")
    config = make_config("loss_diverges", **{"search.max_trials": 2, "search.max_attempts": 3})
    summary = start_or_resume(config, wd, quiet=True)
    assert summary["failed"] == 2
    with TrialStore(os.path.join(wd, "trials.jsonl"), readonly=True) as store:
        assert all(t.attempts == 1 and t.error.startswith("NonFiniteLossError:") for t in store.trials.values())
        assert not any(r["event"] == "attempt_failed" for r in store.records)
    for tid in (0, 1):
        assert len([n for n in os.listdir(os.path.join(wd, "trials", f"{tid:06d}")) if n.startswith("called-")]) == 1


def test_a_changed_config_is_refused_with_the_keys_that_differ(tmp_path):
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 2}), wd, quiet=True)
    before = open(os.path.join(wd, "trials.jsonl")).read()
    changed = make_config(**{"search.max_trials": 2, "controller.policy_gradient.learning_rate": 0.1})
    with pytest.raises(SearchError, match="keys that differ: controller.policy_gradient.learning_rate"):
        start_or_resume(changed, wd, quiet=True)
    assert open(os.path.join(wd, "trials.jsonl")).read() == before


def test_a_workdir_is_driven_by_one_process_at_a_time(tmp_path):
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 1}), wd, quiet=True)
    holder = Workdir(wd)
    holder.lock()
    try:
        with pytest.raises(WorkdirError, match="is in use by pid"):
            start_or_resume(make_config(**{"search.max_trials": 2}), wd, quiet=True)
    finally:
        holder.unlock()


def test_resume_of_an_empty_directory_is_an_error(tmp_path):
    with pytest.raises(WorkdirError, match="holds no search"):
        start_or_resume(None, str(tmp_path / "nothing"), quiet=True)
    assert not os.path.exists(tmp_path / "nothing")


def test_a_corrupt_log_line_stops_with_a_clear_error(tmp_path):
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.max_trials": 3}), wd, quiet=True)
    path = os.path.join(wd, "trials.jsonl")
    lines = open(path).read().splitlines()
    lines[2] = "{garbage"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(TrialLogError, match="line 3 is corrupt"):
        start_or_resume(make_config(**{"search.max_trials": 4}), wd, quiet=True)

"""A multi-fidelity search killed at any moment resumes to the uninterrupted history.

One worker and a deterministic evaluator: the same trials, rungs, promotions and rewards; no trial is
promoted twice, no rung result recorded is lost, and no trial trains again what its checkpoint holds.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from nas.search_runner import start_or_resume
from nas.trial_store import read_records
from tests.nas.test_fidelity import RUNGS, asha_history
from tests.nas.test_search_loop import TOY, make_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERRIDES = {
    "search.fidelity": "asha",
    "search.rungs": RUNGS,
    "search.max_trials": 10,
    "search.snapshot_every": 3,
    "reward.low_fidelity": "calibrated",
}


def config():
    return make_config("curves", **OVERRIDES)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("whole") / "s")
    start_or_resume(config(), wd, quiet=True)
    return wd


def check_trained_once(wd):
    """No (trial, rung) promoted twice; every trial trained each epoch once (its checkpoint continued)."""
    records, _ = read_records(os.path.join(wd, "trials.jsonl"))
    promotions = [(r["trial_id"], r["rung"]) for r in records if r["event"] == "rung"]
    assert len(promotions) == len(set(promotions))
    for name in os.listdir(os.path.join(wd, "trials")):
        with open(os.path.join(wd, "trials", name, "toy_checkpoint.json")) as f:
            reached = json.load(f)["epochs"]
        last = [r for r in records if r.get("trial_id") == int(name) and r["event"] == "completed"][-1]
        assert reached == last["fidelity"]["epochs"]


def test_the_uninterrupted_search_promotes_and_stops(whole):
    history = asha_history(whole)
    decisions = [e[2] for h in history for e in h[5]]
    assert {"promoted", "stopped", "final"} <= set(decisions)
    check_trained_once(whole)


def cuts(records):
    """Where a kill leaves the log: just after a promotion (before the continuation is dispatched), after
    the continuation's ``started``, and after a stopped trial's result."""
    rung = [r["seq"] + 1 for r in records if r["event"] == "rung"]
    after = [s + 1 for s in rung]
    stopped = [r["seq"] + 1 for r in records if r["event"] == "completed" and r["fidelity"]["decision"] == "stopped"]
    return sorted(set(rung[:2] + after[1:2] + stopped[:1]))


def test_a_kill_at_any_record_between_rungs_resumes_to_the_same_history(tmp_path, whole):
    records, _ = read_records(os.path.join(whole, "trials.jsonl"))
    with open(os.path.join(whole, "trials.jsonl"), "rb") as f:
        lines = f.read().split(b"\n")
    for cut in cuts(records):
        wd = str(tmp_path / f"cut{cut}")
        shutil.copytree(whole, wd)
        with open(os.path.join(wd, "trials.jsonl"), "wb") as f:
            f.write(b"\n".join(lines[:cut]) + b"\n")
        for name in os.listdir(os.path.join(wd, "snapshots")):  # snapshots no newer than the log
            if int(name[5:13]) > cut:
                os.remove(os.path.join(wd, "snapshots", name))
        # Each trial's checkpoint as the kill left it: at the last rung the log records for it (the
        # attempt in flight had not finished), none before its first rung.
        reached = {}
        for r in records[:cut]:
            if r["event"] in ("rung", "completed"):
                reached[r["trial_id"]] = (r if r["event"] == "rung" else r["fidelity"])["epochs"]
        for name in os.listdir(os.path.join(wd, "trials")):
            path = os.path.join(wd, "trials", name, "toy_checkpoint.json")
            if int(name) in reached:
                with open(path, "w") as f:
                    json.dump({"epochs": reached[int(name)]}, f)
            elif os.path.exists(path):
                os.remove(path)
        start_or_resume(None, wd, quiet=True)
        assert asha_history(wd) == asha_history(whole), f"cut at record {cut}"
        check_trained_once(wd)


def test_kill_9_during_a_promoted_continuation_then_resume(tmp_path, whole):
    wd = str(tmp_path / "s")
    overrides = ",".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in OVERRIDES.items())
    overrides = overrides.replace("[1.0, 2.0, 5.0]", "[1.0,2.0,5.0]")
    args = [
        sys.executable, "-m", "nas.cli", "search", "--experiment=spinenet49_coco_proxy", f"--workdir={wd}",
        f"--evaluator={TOY}:curves", "--quiet",
        "--params_override=search.executor=local,controller.algorithm=reinforce,"
        "controller.policy_gradient.update_every=3,search.reuse_results=true,search.report_every=0," + overrides,
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "TOY_SLEEP": "0.3"}, stderr=subprocess.PIPE)
    log = os.path.join(wd, "trials.jsonl")
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            records, _ = read_records(log)
            if any(r["event"] == "rung" for r in records):
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            time.sleep(0.05)
        time.sleep(0.15)  # inside the continuation (the evaluator sleeps 0.3 s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    records, _ = read_records(log)
    assert any(r["event"] == "rung" for r in records) and len(records) < len(read_records(whole + "/trials.jsonl")[0])
    start_or_resume(None, wd, quiet=True)
    assert asha_history(wd) == asha_history(whole)
    check_trained_once(wd)

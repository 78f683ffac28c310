"""search.trial_timeout_s: a hung trial's worker is killed, the attempt retried, then the trial failed."""

import json
import os
import re
import subprocess
import sys

from experiments.overrides import apply_overrides
from experiments.registry import get_experiment
from nas.executors import LocalExecutor, TrialTask
from nas.search_runner import start_or_resume
from nas.workdir import Workdir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = "tests.nas.toy_evaluators"
LIMIT_S = 3


def read_log(workdir):
    with open(os.path.join(workdir, "trials.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def worker_notes(trial_dir):
    notes = []
    for name in sorted(os.listdir(trial_dir)):
        if name.startswith("worker-"):
            with open(os.path.join(trial_dir, name)) as f:
                notes.append(json.load(f))
    return sorted(notes, key=lambda n: n["start"])


def test_a_hung_trial_is_killed_at_the_limit_retried_then_failed_and_the_next_trial_runs(tmp_path):
    from ray._private.utils import get_num_cpus

    wd = str(tmp_path / "search")
    # Every trial takes all of the local Ray's CPUs: the retry and the next trials can only be
    # scheduled once the killed worker's resources are given back.
    overrides = (
        f"search.trial_timeout_s={LIMIT_S},search.max_attempts=2,search.max_concurrent=1,"
        f"search.fresh_worker_per_trial=false,search.trial_cpus={get_num_cpus()}"
    )
    r = subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", "--experiment=spinenet49_coco_proxy", f"--workdir={wd}",
         f"--evaluator={TOY}:hangs_on_trial_0", "--max_trials=3", f"--params_override={overrides}", "--quiet"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    log = read_log(wd)
    message = re.compile(rf"^trial exceeded search.trial_timeout_s={LIMIT_S} \(ran \d+ s\); its worker was killed$")
    ends = [rec for rec in log if rec.get("trial_id") == 0 and rec["event"] in ("attempt_failed", "failed")]
    assert [rec["event"] for rec in ends] == ["attempt_failed", "failed"], log
    assert all(message.match(rec["error"]) for rec in ends), ends

    notes = worker_notes(os.path.join(wd, "trials", "000000"))
    assert len(notes) == 2 and notes[0]["pid"] != notes[1]["pid"]  # one worker per attempt, each killed
    for note, end in zip(notes, ends):
        # Killed within a few seconds of the limit. The clock starts when the driver sees the attempt
        # running, a moment before or after the evaluator itself starts.
        ran = end["time"] - note["start"]
        assert LIMIT_S - 1 <= ran <= LIMIT_S + 5, (ran, note, end)
    with open(os.path.join(wd, "trials", "000000", "error_attempt1.txt")) as f:
        assert "timeout: trial exceeded" in f.read()

    final = {rec["trial_id"]: rec for rec in log if rec["event"] in ("completed", "failed")}
    assert [final[t]["event"] for t in (0, 1, 2)] == ["failed", "completed", "completed"]
    for tid in (1, 2):  # measured by the next trials while the search ran: both killed workers were gone
        assert final[tid]["metrics"]["trial0_workers"] == 2
        assert final[tid]["metrics"]["trial0_workers_alive"] == 0


def test_the_local_executor_ignores_the_limit(tmp_path):
    """It runs trials in this process, which it cannot kill: the limit is documented as Ray's only."""
    config = {"search": {"trial_timeout_s": 0.01}}
    executor = LocalExecutor(f"{TOY}:slow", config)
    task = TrialTask(trial_id=0, attempt=1, architecture={"blocks": [{"level": 4, "block_fn": "bottleneck"}]},
                     seed=0, trial_dir=str(tmp_path))  # fmt: skip
    executor.submit(task)
    (outcome,) = executor.wait(timeout=1)
    assert outcome.kind == "ok" and outcome.result["timings"]["evaluate_s"] > 0.01


def test_the_limit_may_change_when_a_search_is_continued(tmp_path):
    def config(**overrides):
        base = {"search.executor": "local", "search.evaluator": f"{TOY}:deterministic", "search.max_trials": 2}
        return apply_overrides(get_experiment("spinenet49_coco_proxy"), {**base, **overrides})

    wd = str(tmp_path / "s")
    start_or_resume(config(), wd, quiet=True)
    summary = start_or_resume(config(**{"search.max_trials": 3, "search.trial_timeout_s": 60.0}), wd, quiet=True)
    assert summary["completed"] == 3
    # A runtime key: the frozen config records the new limit, and its checksum (over the rest) still holds.
    with open(os.path.join(wd, "config.json")) as f:
        assert json.load(f)["search"]["trial_timeout_s"] == 60.0
    assert Workdir(wd).config().search.trial_timeout_s == 60.0
    summary = start_or_resume(config(**{"search.max_trials": 4}), wd, quiet=True)
    assert summary["completed"] == 4
    with open(os.path.join(wd, "config.json")) as f:
        assert json.load(f)["search"]["trial_timeout_s"] == 6 * 3600.0  # back to the experiment's, as given

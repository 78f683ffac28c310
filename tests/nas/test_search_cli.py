"""nas-search search/resume/status/export/plot driven as a user drives them: subprocesses, local Ray."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = "tests.nas.toy_evaluators"
# Small, fast searches: the RNN controller learns every 3 results; 2 trials at once.
# No periodic HTML report: the report tests cover it, and it costs more than these toy trials.
COMMON = "controller.policy_gradient.update_every=3,search.fresh_worker_per_trial=false,search.trial_cpus=1,search.report_every=0"


def nas_search(*args, timeout=240, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "nas.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=full_env,
    )


def start(*args, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "nas.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=full_env,
        start_new_session=True,
    )


def read_log(workdir):
    with open(os.path.join(workdir, "trials.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def history(workdir):
    trials = {}
    for r in read_log(workdir):
        if r["event"] == "proposed":
            trials[r["trial_id"]] = [r["trial_id"], r["fingerprint"], r["seed"], None, None]
        elif r["event"] in ("completed", "failed"):
            trials[r["trial_id"]][3] = r["event"]
            trials[r["trial_id"]][4] = r.get("reward")
    return [tuple(v) for _, v in sorted(trials.items())]


@pytest.fixture(scope="module")
def chaos_search(tmp_path_factory):
    """A search whose evaluator kills its worker, raises, returns NaN or succeeds."""
    wd = str(tmp_path_factory.mktemp("chaos") / "search")
    r = nas_search(
        "search",
        "--experiment=spinenet49_coco_proxy",
        f"--workdir={wd}",
        f"--evaluator={TOY}:chaos",
        "--max_trials=12",
        f"--params_override={COMMON},search.max_attempts=2",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return wd, r


def test_a_search_survives_dying_raising_and_nan_evaluators(chaos_search):
    wd, r = chaos_search
    log = read_log(wd)
    final = {rec["trial_id"]: rec for rec in log if rec["event"] in ("completed", "failed")}
    assert len(final) == 12
    seeds = {rec["trial_id"]: rec["seed"] for rec in log if rec["event"] == "proposed"}
    for tid, rec in final.items():
        kind = seeds[tid] % 4
        if kind == 0:
            assert rec["event"] == "failed" and "worker died" in rec["error"], rec
        elif kind == 1:
            assert rec["event"] == "failed" and "chaos: trial with seed" in rec["error"], rec
        elif kind == 2:
            assert rec["event"] == "failed" and "'nan'" in rec["error"], rec
        else:
            assert rec["event"] == "completed" and rec["reward"] > 0, rec
    retried = {rec["trial_id"] for rec in log if rec["event"] == "attempt_failed"}
    assert retried == {tid for tid in final if seeds[tid] % 4 in (0, 1)}  # NaN is not retried: it is not transient
    assert "12 completed" not in r.stdout


def test_status_export_and_plot_after_a_search(chaos_search, tmp_path):
    wd, _ = chaos_search
    r = nas_search("status", f"--workdir={wd}", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["completed"] + status["failed"] == 12 and status["running"] == 0
    assert status["best"][0]["reward"] >= status["best"][-1]["reward"]
    assert status["controller"]["results"] > 0
    human = nas_search("status", f"--workdir={wd}")
    assert "best architectures:" in human.stdout and "failed trial" in human.stdout

    out = tmp_path / "best.json"
    r = nas_search("export", f"--workdir={wd}", f"--output={out}")
    assert r.returncode == 0, r.stderr
    exported = json.loads(out.read_text())
    assert exported["provenance"]["trial_id"] == status["best"][0]["trial_id"]
    assert exported["provenance"]["search_id"] == status["search_id"]
    r = nas_search("export", f"--workdir={wd}", "--top=3", f"--output={tmp_path / 'specs'}", "--format=block_specs")
    assert r.returncode == 0, r.stderr
    files = sorted(os.listdir(tmp_path / "specs"))
    assert len(files) == 3 and files[0].startswith("rank01_")
    specs = json.loads((tmp_path / "specs" / files[0]).read_text())
    assert specs[0] == [2, "bottleneck", [None, None], False]
    # A destination that cannot be written (its parent is a file): one line naming it, nothing left.
    blocked = tmp_path / "specs" / files[0] / "best.json"
    r = nas_search("export", f"--workdir={wd}", f"--output={blocked}")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"nas-search export: error: {blocked.parent}: "), r.stderr
    assert sorted(os.listdir(tmp_path / "specs")) == files

    front = status["pareto_front"]
    assert front["cost"] == "multiply_adds" and front["cost_target"] is None and not status["cost_aware"]
    costs, values = [p["cost"] for p in front["trials"]], [p["value"] for p in front["trials"]]
    assert front["trials"] and costs == sorted(costs) and values == sorted(values)
    assert "Pareto front" not in human.stdout  # shown in text only for a cost-aware reward

    r = nas_search("plot", f"--workdir={wd}", "--json")
    assert r.returncode == 0, r.stderr
    assert "pareto.png" in {os.path.basename(p) for p in json.loads(r.stdout)["files"]}
    for path in json.loads(r.stdout)["files"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 10_000


def test_kill_9_then_resume_gives_the_history_of_an_uninterrupted_search(tmp_path):
    args = [
        "--experiment=spinenet49_coco_proxy",
        f"--evaluator={TOY}:slow",
        "--max_trials=10",
        f"--params_override={COMMON},search.max_concurrent=1",
        "--quiet",
    ]
    env = {"TOY_SLEEP": "0.4"}
    # The uninterrupted search runs beside the interrupted one (each is mostly one core's start-up and waits).
    whole = str(tmp_path / "whole")
    uninterrupted = start("search", f"--workdir={whole}", *args, env=env)
    try:
        cut = str(tmp_path / "cut")
        for wait_for in (2, 6):  # kill twice, at different points
            proc = start("search", f"--workdir={cut}", *args, env=env)
            deadline = time.time() + 120
            while time.time() < deadline:
                done = [h for h in history(cut) if h[3]] if os.path.exists(os.path.join(cut, "trials.jsonl")) else []
                if len(done) >= wait_for:
                    break
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        r = nas_search("resume", f"--workdir={cut}", "--quiet")
        assert r.returncode == 0, r.stderr[-3000:]
        _, err = uninterrupted.communicate(timeout=240)
        assert uninterrupted.returncode == 0, err[-3000:]
    finally:
        if uninterrupted.poll() is None:
            os.killpg(uninterrupted.pid, signal.SIGKILL)
            uninterrupted.wait()
    assert history(cut) == history(whole)
    started = [rec for rec in read_log(cut) if rec["event"] == "started"]
    assert len(started) >= 10  # re-runs of in-flight trials add attempts, never trials
    assert len([h for h in history(cut) if h[3] == "completed"]) == 10


BAD_SEARCH_INPUT = {
    "unknown_experiment": (["--experiment=nope"], "unknown experiment 'nope'"),
    "max_trials": (["--params_override=search.max_trials=many"], "search.max_trials: expected an integer"),
    "algorithm": (["--params_override=controller.algorithm=annealing"], "controller.algorithm"),
    "no_function": ([f"--evaluator={TOY}:missing"], "has no function 'missing'"),
    "no_module": (["--evaluator=no_such_module_xyz:f"], "cannot import 'no_such_module_xyz'"),
    "unreachable_ray": (["--ray_address=127.0.0.1:1"], "cannot reach the Ray cluster at '127.0.0.1:1'"),
}
MISSING_DATASET = {
    "not_set": ([], "data.annotation_file and data.image_dir are not both set"),
    "not_there": (
        ["--params_override=data.annotation_file=/no/such/instances.json,data.image_dir=/no/such/dir"],
        "does not exist",
    ),
}


@pytest.fixture(scope="module")
def refused_searches(tmp_path_factory):
    """Every refused ``nas-search search`` of the two tests below, started at once (each is mostly a
    TensorFlow start-up on one core): case -> (workdir, process, stderr file)."""
    started = {}
    for case, (args, _) in BAD_SEARCH_INPUT.items():
        base = {"--experiment": "--experiment=spinenet49_coco_proxy", "--evaluator": f"--evaluator={TOY}:trivial"}
        for a in args:
            base[a.split("=")[0]] = a
        started[case] = (*base.values(), "--max_trials=2")
    for case, (args, _) in MISSING_DATASET.items():
        started[case] = ("--experiment=spinenet49_coco_proxy", "--max_trials=1", *args)
    runs = {}
    try:
        for case, args in started.items():
            root = tmp_path_factory.mktemp(case)
            wd, err_path = root / "s", root / "stderr"
            with open(err_path, "w") as err:
                proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", f"--workdir={wd}", *args],
                                        stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)  # fmt: skip
            runs[case] = (wd, proc, err_path)
        yield runs
    finally:
        for _, proc, _ in runs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def check_refused(run, message):
    wd, proc, err_path = run
    returncode = proc.wait(timeout=240)
    stderr = err_path.read_text()
    assert returncode == 2, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], stderr[-2000:]
    assert not wd.exists()  # a refused new search leaves nothing behind, not even its lock


@pytest.mark.parametrize("case", BAD_SEARCH_INPUT)
def test_bad_search_input_is_one_line_and_exit_2(refused_searches, case):
    check_refused(refused_searches[case], BAD_SEARCH_INPUT[case][1])


@pytest.mark.parametrize("case", MISSING_DATASET)
def test_a_missing_dataset_is_one_line_and_exit_2(refused_searches, case):
    check_refused(refused_searches[case], MISSING_DATASET[case][1])


def test_the_data_command_prepares_the_synthetic_dataset(tmp_path):
    r = nas_search(
        "data",
        "--experiment=synthetic_smoke",
        "--params_override=data.synthetic.num_images=24,data.holdout_size=4",
        "--json",
        env={"SPINENET_NAS_CACHE": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["num_train_images"] == 20 and out["num_eval_images"] == 4
    assert out["cache"].startswith(str(tmp_path))


def test_a_workdir_of_another_search_is_refused_and_kept(tmp_path):
    wd = str(tmp_path / "s")
    # In this process (search.executor=local): what is under test is the workdir, not where trials run.
    first = [
        "--experiment=spinenet49_coco_proxy",
        f"--evaluator={TOY}:trivial",
        f"--params_override={COMMON},search.executor=local",
        "--quiet",
    ]
    r = nas_search("search", f"--workdir={wd}", *first, "--max_trials=2")
    assert r.returncode == 0, r.stderr[-2000:]
    before = open(os.path.join(wd, "trials.jsonl")).read()
    r = nas_search(
        "search",
        f"--workdir={wd}",
        "--experiment=spinenet49_coco_proxy",
        f"--evaluator={TOY}:trivial",
        f"--params_override={COMMON},search.executor=local,search_space.parent_window=4",
        "--max_trials=3",
    )
    assert r.returncode == 2
    assert "keys that differ: search_space.parent_window" in r.stderr
    assert open(os.path.join(wd, "trials.jsonl")).read() == before
    r = nas_search("status", f"--workdir={tmp_path / 'none'}")
    assert r.returncode == 2 and "holds no search" in r.stderr


def test_on_a_terminal_the_search_shows_a_live_line_below_each_finished_trial(tmp_path):
    """Under a pseudo-terminal: trial lines scroll, the status line is redrawn in place, then a final line."""
    import pty

    wd = str(tmp_path / "search")
    argv = [sys.executable, "-m", "nas.cli", "search", "--experiment=spinenet49_coco_proxy", f"--workdir={wd}",
            f"--evaluator={TOY}:slow", "--max_trials=4", f"--params_override={COMMON},search.executor=local"]  # fmt: skip
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, cwd=ROOT, close_fds=True)
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    assert proc.wait(timeout=240) == 0
    out = b"".join(chunks).decode(errors="replace")
    assert "\r\x1b[K" in out  # the live line is redrawn in place
    for trial_id in range(4):
        assert f"trial {trial_id}: reward " in out
    final = out.split("\r\x1b[K")[-1]
    assert "search finished: trials 4/4  running 0  failed 0" in final
    assert "Traceback" not in out


def test_the_installed_command_finds_an_evaluator_in_the_current_directory(tmp_path):
    """As the README's 'Bring your own task' says: run from where the module is, with the console script."""
    script = shutil.which("nas-search")
    assert script, "nas-search is not installed (pip install -e .)"
    (tmp_path / "my_evals.py").write_text(
        "def evaluate(architecture, seed, trial_dir):\n    return {'AP': len(architecture['blocks']) / 100}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [
            script,
            "search",
            "--experiment=spinenet49_coco_proxy",
            "--workdir=wd",
            "--evaluator=my_evals:evaluate",
            "--max_trials=3",
            "--quiet",
            "--json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)
    assert summary["completed"] == 3 and summary["best_reward"] == 0.15

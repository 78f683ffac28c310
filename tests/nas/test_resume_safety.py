"""A resume that cannot restore the controller changes nothing; --rebuild_controller is the way out.

Each case damages a finished search the way a user or an upgrade might, then checks that continuing
it fails with one message that says what to do, leaves the workdir byte-identical (so every later
attempt fails the same way), and that the action the message names gives the uninterrupted history.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from controller import build_controller
from nas.search_loop import SearchLoop
from nas.search_replay import ReplayError
from nas.search_runner import start_or_resume
from nas.trial_store import TrialStore
from nas.workdir import Workdir, WorkdirError
from search_space import DecisionEncoding
from tests.nas.test_search_loop import TOY, history, make_config


def tree(path):
    """Every file's bytes and every directory under ``path``: what must not change."""
    out = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), path) + "/"] = None
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One uninterrupted 12-trial search: the reference history."""
    wd = str(tmp_path_factory.mktemp("whole") / "s")
    start_or_resume(make_config(**{"search.snapshot_every": 2}), wd, quiet=True)
    return wd


def partial(tmp_path, trials=6):
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{"search.snapshot_every": 2, "search.max_trials": trials}), wd, quiet=True)
    return wd


@pytest.fixture(scope="module")
def six_trials(tmp_path_factory):
    """The first 6 trials of ``whole``'s search, run once (``partial``): each test damages a copy of its own."""
    return partial(tmp_path_factory.mktemp("six_trials"))


@pytest.fixture
def copy_of_six(six_trials, tmp_path):
    """A copy of ``six_trials`` in this test's directory (a workdir holds no path of its own)."""
    wd = str(tmp_path / "s")
    shutil.copytree(six_trials, wd)
    return wd


def newest_snapshot(wd):
    snaps = sorted(n for n in os.listdir(os.path.join(wd, "snapshots")) if n.endswith(".json"))
    return os.path.join(wd, "snapshots", snaps[-1])


def edit_json(path, change):
    with open(path) as f:
        data = json.load(f)
    change(data)
    with open(path, "w") as f:
        json.dump(data, f)


def fails_twice_without_a_trace(wd, match, **kwargs):
    """Two attempts, each refused with ``match``; the workdir is byte-identical after both."""
    before = tree(wd)
    for _ in range(2):
        with pytest.raises(ReplayError, match=match) as err:
            start_or_resume(make_config(**{"search.snapshot_every": 2}), wd, quiet=True, **kwargs)
        assert tree(wd) == before
    return str(err.value)


def test_a_snapshot_with_an_unknown_hyperparameter_is_refused_and_rebuild_recovers(copy_of_six, whole):
    wd = copy_of_six
    snap = newest_snapshot(wd)
    edit_json(snap, lambda d: d["controller"]["hparams"].update(added_by_a_newer_version=1))
    message = fails_twice_without_a_trace(wd, "snapshot is refused")
    assert "added_by_a_newer_version" in message and snap in message
    assert f"nas-search resume --workdir={wd} --rebuild_controller" in message

    summary = start_or_resume(make_config(**{"search.snapshot_every": 2}), wd, quiet=True, rebuild_controller=True)
    assert any("rebuilt from the whole trial log" in w for w in summary["warnings"])
    assert history(wd) == history(whole)
    assert os.path.exists(snap + ".replaced")  # set aside, never deleted
    # The next plain resume starts from the rebuilt controller's snapshot, without complaint.
    summary = start_or_resume(make_config(**{"search.snapshot_every": 2}), wd, quiet=True)
    assert summary["warnings"] == [] and history(wd) == history(whole)


def test_a_snapshot_of_an_older_version_lacking_a_hyperparameter_loads_with_a_note(copy_of_six, whole):
    wd = copy_of_six
    for name in os.listdir(os.path.join(wd, "snapshots")):
        edit_json(os.path.join(wd, "snapshots", name), lambda d: d["controller"]["hparams"].pop("entropy_weight"))
    summary = start_or_resume(make_config(**{"search.snapshot_every": 2}), wd, quiet=True)
    assert any("without hyperparameter entropy_weight" in w for w in summary["warnings"]), summary["warnings"]
    assert history(wd) == history(whole)


def test_a_snapshot_that_disagrees_with_the_log_is_refused_and_rebuild_recovers(copy_of_six, whole):
    wd = copy_of_six
    # A snapshot that claims to reflect fewer records than it does: the replay after it re-draws
    # proposals the controller has already made, which differ from the log's.
    snaps = sorted(n for n in os.listdir(os.path.join(wd, "snapshots")) if n.endswith(".json"))
    for name in snaps[:-1]:
        os.remove(os.path.join(wd, "snapshots", name))
    edit_json(os.path.join(wd, "snapshots", snaps[-1]), lambda d: d.update(log_seq=d["log_seq"] - 8))
    message = fails_twice_without_a_trace(wd, "the snapshot and the log disagree")
    assert "--rebuild_controller" in message
    start_or_resume(make_config(**{"search.snapshot_every": 2}), wd, quiet=True, rebuild_controller=True)
    assert history(wd) == history(whole)


def test_an_edited_proposal_in_the_log_fails_every_time_even_when_rebuilding(copy_of_six):
    wd = copy_of_six
    log = os.path.join(wd, "trials.jsonl")
    with open(log) as f:
        lines = f.read().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    proposed = [i for i, r in enumerate(records) if r["event"] == "proposed"]
    first, last = records[proposed[0]], records[proposed[-1]]
    last["proposal"]["decisions"] = first["proposal"]["decisions"]  # another valid architecture
    lines[proposed[-1]] = json.dumps(last, separators=(",", ":")) + "\n"
    with open(log, "w") as f:
        f.writelines(lines + ['{"event":"comp'])  # and a torn last line, which must survive too
    # As a crash leaves them: snapshots older than the edited record only.
    snap_dir = os.path.join(wd, "snapshots")
    for name in os.listdir(snap_dir):
        if int(name[5:13]) > last["seq"]:
            os.remove(os.path.join(snap_dir, name))
    assert os.listdir(snap_dir)
    message = fails_twice_without_a_trace(wd, f"replaying trial {last['trial_id']}.*the snapshot and the log disagree")
    assert "--rebuild_controller" in message
    message = fails_twice_without_a_trace(wd, "from the start of the log", rebuild_controller=True)
    assert "Restore trials.jsonl from a backup" in message


def test_rebuilding_an_intact_log_gives_exactly_the_snapshot_controller(tmp_path):
    wd = partial(tmp_path, trials=9)
    config = make_config(**{"search.snapshot_every": 2})
    states = []
    for rebuild in (False, True):
        encoding = DecisionEncoding(config.search_space)
        controller = build_controller(config.controller, encoding, seed=config.search.seed)
        with TrialStore(os.path.join(wd, "trials.jsonl")) as store:
            loop = SearchLoop(
                workdir=Workdir(wd),
                store=store,
                controller=controller,
                encoding=encoding,
                search_config=config.search,
                reward_fn=lambda metrics, arch: metrics["AP"],
            )
            loop.restore(rebuild=rebuild)
        states.append(controller.get_state())
    assert states[0] == states[1]


def test_a_failed_resume_through_the_cli_is_one_line_exit_2_and_changes_nothing(copy_of_six):
    wd = copy_of_six
    edit_json(newest_snapshot(wd), lambda d: d["controller"]["hparams"].update(learning_rate=0.5))
    before = tree(wd)
    r = subprocess.run(
        [sys.executable, "-m", "nas.cli", "resume", f"--workdir={wd}", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "learning_rate" in lines[0] and "--rebuild_controller" in lines[0]
    assert tree(wd) == before


# ----- status is read-only ------------------------------------------------------------


def nas_status(wd):
    r = subprocess.run(
        [sys.executable, "-m", "nas.cli", "status", f"--workdir={wd}", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_status_on_a_damaged_workdir_reports_and_writes_nothing(copy_of_six):
    wd = copy_of_six
    with open(newest_snapshot(wd), "w") as f:
        f.write('{"schema_version": 1, "log_seq": ')  # a torn snapshot
    with open(os.path.join(wd, "trials.jsonl"), "a") as f:
        f.write('{"event":"start')  # a torn last line of the log
    with open(os.path.join(wd, ".lock"), "w") as f:
        f.write("pid 999999999 host " + os.uname().nodename)  # left by a driver killed with -9
    before = tree(wd)
    status = nas_status(wd)
    assert tree(wd) == before
    assert status["running_now"] is False
    assert status["completed"] == 6
    assert any("controller snapshot" in w for w in status["warnings"])


def test_status_during_a_running_search_takes_no_lock_and_writes_nothing(tmp_path):
    wd = str(tmp_path / "s")
    release = tmp_path / "release"
    env = {**os.environ, "TOY_WAIT_FOR": str(release)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nas.cli",
            "search",
            "--experiment=spinenet49_coco_proxy",
            f"--workdir={wd}",
            f"--evaluator={TOY}:waits_for_file",
            "--max_trials=2",
            "--params_override=search.executor=local",
            "--quiet",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 120
        log = os.path.join(wd, "trials.jsonl")
        while time.time() < deadline:
            if os.path.exists(log) and '"event":"started"' in open(log).read():
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        time.sleep(0.5)  # the evaluator is now waiting: the driver writes nothing until released
        before = tree(wd)
        status = nas_status(wd)
        assert tree(wd) == before
        assert status["running_now"] is True
        assert status["driven_by"].startswith(f"pid {proc.pid} ")
        assert status["running"] == 1
    finally:
        release.write_text("go")
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert nas_status(wd)["running_now"] is False


# ----- a frozen config edited by hand, a full disk ------------------------------------------


def test_an_edited_config_json_is_refused_and_changes_nothing(copy_of_six):
    wd = copy_of_six
    edit_json(os.path.join(wd, "config.json"), lambda d: d["controller"]["policy_gradient"].update(learning_rate=0.5))
    before = tree(wd)
    for _ in range(2):
        with pytest.raises(WorkdirError, match="config.json: the frozen config was edited after the search began"):
            start_or_resume(None, wd, quiet=True)
        assert tree(wd) == before


def test_a_full_disk_while_appending_stops_with_one_line_and_the_log_intact(tmp_path):
    """The driver runs with a file-size limit just above the log's size: appends fail as on a full disk."""
    overrides = {"controller.algorithm": "random", "search.snapshot_every": 1000}
    whole = str(tmp_path / "whole")
    start_or_resume(make_config(**overrides), whole, quiet=True)
    wd = str(tmp_path / "s")
    start_or_resume(make_config(**{**overrides, "search.max_trials": 4}), wd, quiet=True)
    log = os.path.join(wd, "trials.jsonl")
    limit = os.path.getsize(log) + 3000  # room for a record or two, then EFBIG mid-record
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "from nas.cli import run\n"
        f"sys.argv = ['nas-search', 'resume', '--workdir={wd}', '--max_trials=12']\n"
        "run()\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    lines = r.stderr.strip().splitlines()
    errors = [line for line in lines if "error" in line]
    assert r.returncode == 2 and errors == lines[-1:], r.stderr[-3000:]  # progress lines, then one error line
    assert f"{log}: cannot append to the trial log (File too large)" in lines[-1]
    assert not any(line.startswith("search finished") for line in lines), r.stderr
    with open(log, "rb") as f:
        assert f.read().endswith(b"\n")  # the partial record was cut: the log ends on a whole line
    assert 4 < len([h for h in history(wd) if h[3] == "completed"]) < 12
    start_or_resume(None, wd, quiet=True)  # space freed: the same command continues
    assert history(wd) == history(whole)

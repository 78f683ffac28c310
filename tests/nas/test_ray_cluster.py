"""nas-search on a real multi-node Ray cluster, with faults: nodes, workers, the driver and the head die.

Each node is a ``ray start --block`` process of this test on this machine, with its own temp dir,
ports and loopback address (the head at 127.0.0.2, a second node at 127.0.0.3: Ray resolves
127.0.0.1 to the machine's network address, so another loopback address keeps every connection on
this machine), and token authentication on (RAY_AUTH_MODE=token, the token in RAY_AUTH_TOKEN), as
``ray start`` clusters have it in Ray 2.60. Every process the test starts is ended by its pid.
"""

import collections
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = "tests.nas.toy_evaluators"
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
SLEEP_S = 3.0  # how long a noted_slow trial runs: long enough to kill something under it
# No periodic HTML report: the report tests cover it.
COMMON = "search.fresh_worker_per_trial=false,search.trial_cpus=1,controller.policy_gradient.update_every=2,search.report_every=0"
# The processes each node starts are found through /proc (to end exactly those).
pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_table():
    """pid -> (parent pid, start time, command name), from /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rpartition(")")[2].split()
        table[int(name)] = (int(fields[1]), fields[19], comm)
    return table


class Node:
    """One ``ray start --block`` process of this test, and every process it started that was seen."""

    def __init__(self, name, args, env, root):
        self.name, self.root = name, root
        self.log_path = os.path.join(root, f"{name}.log")
        self.temp_dir = os.path.join(root, name)
        ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
        command = [ray_cli if os.path.exists(ray_cli) else shutil.which("ray"), "start", *args]
        command += [f"--temp-dir={self.temp_dir}", "--num-cpus=1", "--object-store-memory=100000000"]
        command += ["--disable-usage-stats", "--include-log-monitor=false", "--block"]
        command += [f"--dashboard-agent-listen-port={free_port()}"]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.seen = {}  # pid -> start time: killed at the end even if orphaned by then
        self._wait_started()

    def _wait_started(self, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path) as f:
                text = f.read()
            if "Ray runtime started" in text and self.find("raylet"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"ray start ({self.name}) did not start:\n{text[-3000:]}")

    def refresh(self):
        table = proc_table()
        children = collections.defaultdict(list)
        for pid, (ppid, _, _) in table.items():
            children[ppid].append(pid)
        stack = [self.proc.pid]
        while stack:
            pid = stack.pop()
            if pid in table:
                self.seen.setdefault(pid, table[pid][1])
            stack += children.get(pid, [])
        return table

    def find(self, comm):
        table = self.refresh()
        return [pid for pid in self.seen if pid in table and table[pid][2] == comm]

    def alive(self):
        return self.proc.poll() is None and bool(self.find("raylet"))

    def kill(self, only=None):
        """SIGKILL ``only`` (pids), or this node's every process, if still the same processes."""
        table = self.refresh()
        for pid in only if only is not None else [self.proc.pid, *self.seen]:
            if pid in table and (pid == self.proc.pid or table[pid][1] == self.seen.get(pid)):
                os.kill(pid, signal.SIGKILL)
        if only is None:
            self.proc.wait(timeout=10)


class Cluster:
    """A head and (maybe) a second node, with token authentication."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="nasray")  # short: Ray's socket paths must fit 107 bytes
        self.token = secrets.token_hex(16)
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, TOY_SLEEP=str(SLEEP_S))
        self.nodes = []
        self.head = self.worker = None
        self.address = None

    def start_head(self):
        port = free_port()
        args = ["--head", f"--node-ip-address={HEAD_IP}", f"--port={port}", "--include-dashboard=false"]
        args += [f"--dashboard-port={free_port()}", f"--ray-client-server-port={free_port()}"]
        self.head = self._add("head", args)
        self.address = f"{HEAD_IP}:{port}"

    def start_worker(self):
        self.worker = self._add(
            f"worker{len(self.nodes)}", [f"--address={self.address}", f"--node-ip-address={WORKER_IP}"]
        )

    def _add(self, name, args):
        node = Node(name, args, self.env, self.root)
        self.nodes.append(node)
        return node

    def ensure_two_nodes(self):
        if not self.worker.alive():
            self.worker.kill()
            self.start_worker()

    def stop(self):
        for node in reversed(self.nodes):
            try:
                node.kill()
            except Exception as e:  # noqa: BLE001 - end the others anyway
                print(f"ending {node.name}: {e}", file=sys.stderr)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        c.start_head()
        c.start_worker()
        yield c
    finally:
        c.stop()


def driver_env(cluster, **extra):
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=cluster.token)
    return {**env, **extra}


def nas_search(*args, env, timeout=240):
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)  # fmt: skip


class Driver:
    """A ``nas-search`` process of this test, in its own process group, ended by its pid."""

    def __init__(self, *args, env, err_path):
        self.err_path = err_path
        self._err = open(err_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "nas.cli", *args], stdout=subprocess.DEVNULL,
                                     stderr=self._err, cwd=ROOT, env=env, start_new_session=True)  # fmt: skip

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._err.close()

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()


def read_log(wd):
    path = os.path.join(wd, "trials.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def notes(wd, tid):
    trial_dir = os.path.join(wd, "trials", f"{tid:06d}")
    found = []
    for name in os.listdir(trial_dir) if os.path.isdir(trial_dir) else []:
        if name.startswith("worker-"):
            with open(os.path.join(trial_dir, name)) as f:
                found.append(json.load(f))
    return sorted(found, key=lambda n: n["start"])


def calls(wd, tid):
    return sum(1 for n in os.listdir(os.path.join(wd, "trials", f"{tid:06d}")) if n.startswith("called-"))


def terminal(log):
    """trial id -> its terminal records (exactly one each when nothing is lost or doubled)."""
    ends = collections.defaultdict(list)
    for rec in log:
        if rec["event"] in ("completed", "failed"):
            ends[rec["trial_id"]].append(rec)
    return ends


def wait_for(predicate, what, timeout=90, driver=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if driver is not None and driver.proc.poll() is not None:
            raise AssertionError(f"the search ended before {what}:\n{driver.stderr()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def search_args(cluster, wd, evaluator, max_trials, extra=""):
    overrides = COMMON + (f",{extra}" if extra else "")
    return ["search", "--experiment=spinenet49_coco_proxy", f"--workdir={wd}", f"--evaluator={TOY}:{evaluator}",
            f"--max_trials={max_trials}", f"--params_override={overrides}", f"--ray_address={cluster.address}"]  # fmt: skip


# ----- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth_env, message",
    [
        ({}, "requires token authentication: set RAY_AUTH_MODE=token and give the cluster's token in RAY_AUTH_TOKEN"),
        (
            {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"},
            "refused the authentication token from RAY_AUTH_TOKEN",
        ),
    ],
)
def test_a_driver_without_the_clusters_token_gets_one_line_naming_authentication(cluster, tmp_path, auth_env, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    wd = tmp_path / "s"
    started = time.time()
    r = nas_search(*search_args(cluster, wd, "trivial", 1), env={**env, **auth_env}, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith(f"nas-search search: error: the Ray cluster at '{cluster.address}' ")
    assert message in lines[0] and "`ray get-auth-token`" in lines[0], lines[0]
    assert time.time() - started < 60  # Ray alone retries for 20 s before a vaguer error
    assert not (wd / "config.json").exists()


def test_without_ray_address_the_search_runs_on_a_new_local_ray_not_the_one_in_ray_address(cluster, tmp_path):
    # RAY_ADDRESS names the cluster and no token is given: joining it would be refused (the test above).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    wd = tmp_path / "s"
    args = ["search", "--experiment=spinenet49_coco_proxy", f"--workdir={wd}", f"--evaluator={TOY}:trivial",
            "--max_trials=1", f"--params_override={COMMON}"]  # fmt: skip
    r = nas_search(*args, env={**env, "RAY_ADDRESS": cluster.address}, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [rec["event"] for rec in read_log(wd) if rec["event"] in ("completed", "failed")] == ["completed"]


# ----- faults on a live cluster ------------------------------------------------------------------------


def test_a_dying_worker_process_is_retried_then_failed_by_policy(cluster, tmp_path):
    wd = str(tmp_path / "s")
    r = nas_search(*search_args(cluster, wd, "exits", 2, "search.max_attempts=2"), env=driver_env(cluster))
    assert r.returncode == 0, r.stderr[-3000:]
    log = read_log(wd)
    ends = terminal(log)
    assert sorted(ends) == [0, 1] and all(len(v) == 1 for v in ends.values())
    for tid in (0, 1):
        assert ends[tid][0]["event"] == "failed" and "worker died" in ends[tid][0]["error"], ends[tid]
        retries = [rec for rec in log if rec["event"] == "attempt_failed" and rec["trial_id"] == tid]
        assert len(retries) == 1 and "worker died" in retries[0]["error"]
        assert len({n["pid"] for n in notes(wd, tid)}) == 2  # two attempts, two worker processes


def test_kill_9_of_the_driver_then_resume_on_the_same_cluster(cluster, tmp_path):
    cluster.ensure_two_nodes()
    wd = str(tmp_path / "s")
    args = search_args(cluster, wd, "noted_slow", 4, "search.max_attempts=1")
    driver = Driver(*args, "--quiet", env=driver_env(cluster), err_path=tmp_path / "driver.err")
    try:

        def running(log):
            return {rec["trial_id"] for rec in log if rec["event"] == "started"} - set(terminal(log))

        wait_for(lambda: len(terminal(read_log(wd))) >= 2 and running(read_log(wd)), "2 done, more running",
                 driver=driver)  # fmt: skip
        os.killpg(driver.proc.pid, signal.SIGKILL)
    finally:
        driver.kill()
    log_at_kill = read_log(wd)
    done_at_kill, in_flight = terminal(log_at_kill), running(log_at_kill)
    assert in_flight, log_at_kill
    r = nas_search("resume", f"--workdir={wd}", f"--ray_address={cluster.address}", "--quiet", env=driver_env(cluster))
    assert r.returncode == 0, r.stderr[-3000:]
    log = read_log(wd)
    assert log[: len(log_at_kill)] == log_at_kill  # the log is only appended to
    ends = terminal(log)
    assert sorted(ends) == list(range(4)) and all(len(v) == 1 for v in ends.values()), ends
    assert all(v[0]["event"] == "completed" for v in ends.values())
    resumed_at = max(i for i, rec in enumerate(log) if rec["event"] == "run")
    rerun = {rec["trial_id"] for rec in log[resumed_at:] if rec["event"] == "started"}
    assert in_flight <= rerun and not rerun & set(done_at_kill)  # in flight: run again; completed: kept
    for tid in done_at_kill:
        assert calls(wd, tid) == 1  # trained once
    trained = [v[0] for v in ends.values() if v[0].get("reused_from") is None]
    fingerprints = {rec["trial_id"]: rec["fingerprint"] for rec in log if rec["event"] == "proposed"}
    assert len({fingerprints[rec["trial_id"]] for rec in trained}) == len(trained)  # no architecture twice


def test_killing_the_second_nodes_raylet_reruns_its_trial_on_the_head(cluster, tmp_path):
    cluster.ensure_two_nodes()
    wd = str(tmp_path / "s")
    args = search_args(cluster, wd, "noted_slow", 4, "search.max_attempts=2")
    driver = Driver(*args, "--quiet", env=driver_env(cluster), err_path=tmp_path / "driver.err")
    try:

        def on_worker_node():  # (trial id,) of a trial running on the second node
            log = read_log(wd)
            running = sorted({rec["trial_id"] for rec in log if rec["event"] == "started"} - set(terminal(log)))
            return next(((tid,) for tid in running if any(n["node"] == WORKER_IP for n in notes(wd, tid))), None)

        (victim,) = wait_for(on_worker_node, "a trial on the second node", driver=driver)
        cluster.worker.kill(only=cluster.worker.find("raylet"))
        assert driver.wait(timeout=180) == 0, driver.stderr()[-3000:]
    finally:
        driver.kill()
    log = read_log(wd)
    ends = terminal(log)
    assert sorted(ends) == [0, 1, 2, 3] and all(len(v) == 1 for v in ends.values()), ends
    assert all(v[0]["event"] == "completed" for v in ends.values()), ends
    retried = [rec for rec in log if rec["event"] == "attempt_failed" and rec["trial_id"] == victim]
    assert len(retried) == 1 and "worker died" in retried[0]["error"], retried
    assert notes(wd, victim)[-1]["node"] == HEAD_IP  # the second attempt ran on the node that was left


# ----- the head goes away ---------------------------------------------------------------------------------


@pytest.fixture
def doomed_cluster():
    c = Cluster()
    try:
        c.start_head()
        yield c
    finally:
        c.stop()


def test_losing_the_head_is_one_error_line_and_the_search_resumes_on_a_new_cluster(doomed_cluster, tmp_path):
    c = doomed_cluster
    wd = str(tmp_path / "s")
    # Ray ends a driver whose GCS is gone after this many seconds; the search must stop before, by itself.
    # (24 s: the search gives the head a third of that, 8 s, to come back before it stops.)
    env = driver_env(c, RAY_gcs_rpc_server_reconnect_timeout_s="24")
    args = search_args(c, wd, "noted_slow", 2, "search.max_attempts=1")
    driver = Driver(*args, "--quiet", env=env, err_path=tmp_path / "driver.err")
    try:
        wait_for(lambda: notes(wd, 0), "a trial running", driver=driver)
        c.head.kill()
        started = time.time()
        status = driver.wait(timeout=60)
    finally:
        driver.kill()
    stderr = driver.stderr()
    assert status == 2 and time.time() - started < 30, stderr[-3000:]  # Ray's own end: status 1, at 24 s
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith(f"nas-search search: error: lost the Ray cluster at '{c.address}': its head"), lines
    log_at_loss = read_log(wd)
    assert log_at_loss and os.path.exists(os.path.join(wd, "config.json"))
    assert not any(rec["event"] == "failed" for rec in log_at_loss)  # the head's loss is not the trials' failure

    c.start_head()  # a new cluster, at a new address
    r = nas_search("resume", f"--workdir={wd}", f"--ray_address={c.address}", "--quiet", env=driver_env(c))
    assert r.returncode == 0, r.stderr[-3000:]
    log = read_log(wd)
    assert log[: len(log_at_loss)] == log_at_loss
    ends = terminal(log)
    assert sorted(ends) == [0, 1] and all(len(v) == 1 and v[0]["event"] == "completed" for v in ends.values())

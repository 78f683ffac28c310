"""Fault injection through the real command line: is anything lost or recorded twice, and what does a user see?

The README promises that a search survives a driver killed at any moment, dying workers, a torn trial
log, a bad controller snapshot and a full disk, and that every error a user can cause is one line and
exit status 2. Unit tests check each promise at one chosen point; this bench runs real searches
(``python -m nas.cli`` in subprocesses, toy evaluators, local Ray) and injects each fault the way it
happens, at seeded random moments where the moment matters, then judges only what the workdirs hold:

- trials lost: trials of an uninterrupted reference search of the same config and seed whose
  (trial id, fingerprint, seed, status, reward) is missing or different after recovery;
- recorded twice: trial ids with more than one terminal record (``completed``/``failed``) in
  ``trials.jsonl``, plus architectures trained twice into the results (two completed, not reused
  trials with one fingerprint, reuse being on);
- the exit statuses seen and the stderr line a user reads.

One worker (``search.max_concurrent=1``) where the history must equal the reference exactly (the
REINFORCE controller learns from the order of results); random search with two workers where
concurrency is the point (its proposals depend on the seed alone, so the history is still exact).

Usage::

    python bench/bench_faults.py [--cases=kill9,worker_death,...] [--repeats=N] [--seed=S] [--quick]

Prints a markdown table; a full default run writes ``bench/results/faults.json`` (rows, command
line, commit, CPUs, load average, date). The cases that damage the driver's own files (torn log,
snapshots, config) run the serial search with ``search.executor=local``, which gives the same history
without a Ray start-up per command; the driver kill runs it on Ray, where a kill also orphans Ray's
processes. The hang case's evaluator, ``hangs_once``, is defined here so that the bench changes
nothing in the shared test helpers.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = "tests.nas.toy_evaluators"
HERE = "bench.bench_faults"  # this module, as Ray workers import it (namespace package under ROOT)
EXPERIMENT = "spinenet49_coco_proxy"
RESULTS = os.path.join(ROOT, "bench", "results", "faults.json")  # results_io.path("faults"), without importing it
# The REINFORCE controller learns every 3 results, so the order of results shapes the history;
# snapshots every 4 results, so a workdir holds several and the newest can be damaged alone.
SERIAL = (
    "controller.policy_gradient.update_every=3,search.fresh_worker_per_trial=false,search.trial_cpus=1,"
    "search.max_concurrent=1,search.snapshot_every=4"
)
# Random search: proposals depend on the seed alone, so two workers still give an exact history.
PARALLEL = (
    "controller.algorithm=random,search.fresh_worker_per_trial=false,search.trial_cpus=1,"
    "search.max_concurrent=2,search.snapshot_every=4"
)
# The full-disk case: the local executor (no Ray process inherits the file-size limit) and random
# search (its snapshots are about 9 KB, not REINFORCE's 1.2 MB, and are written every 4 results: the
# trial log is what meets the limit).
LOCAL = "search.executor=local,controller.algorithm=random,search.snapshot_every=4"
TOY_SLEEP = "0.2"


# ----- evaluators run by the searches (imported by Ray workers as bench.bench_faults:NAME) -------------


def hangs_once(architecture, seed, trial_dir):
    """Hangs in the first attempt of every third trial (by seed), then scores as ``slow`` does.

    A wedged trial that a retry gets through: with ``search.trial_timeout_s`` the history must equal
    the reference search's, which ran ``slow``.
    """
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tests.nas.toy_evaluators import slow

    marker = os.path.join(trial_dir, "hung-once")
    if seed % 3 == 0 and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(float(os.environ.get("TOY_HANG_S", "3600")))
    return slow(architecture, seed, trial_dir)


# ----- processes: every one is started in its own session and ended by pid ------------------------------


def session_members(sid: int) -> list[int]:
    """Live processes (not zombies) of session ``sid``, from /proc."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(name))
    return found


def end_session(sid: int) -> int:
    """SIGKILLs every process left in a session this bench started; returns how many were alive.

    Ray's workers run in process groups of their own, so killing the driver's group leaves them
    for a while; they are this bench's processes all the same (same session), ended by pid.
    """
    alive = session_members(sid)
    for _ in range(50):
        members = session_members(sid)
        if not members:
            break
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return len(alive)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


@dataclasses.dataclass
class Run:
    """One command as it ended."""

    argv: list[str]
    rc: int | None  # None: ended by the bench (killed, or past its deadline)
    stdout: str
    stderr: str
    wall_s: float
    started: float
    killed: bool = False  # SIGKILLed by the bench on purpose
    timed_out: bool = False  # still running at its deadline
    leftover: int = 0  # processes of its session alive when it ended (ended by the bench)

    @property
    def status(self) -> str:
        if self.timed_out:
            return "hung (killed by the bench)"
        if self.killed:
            return "-9"
        return str(self.rc)

    def lines(self) -> list[str]:
        return [line.strip() for line in self.stderr.splitlines() if line.strip()]


class Bench:
    """Temporary root, environment and the commands of one bench run."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.quick = args.quick
        self.seed = args.seed
        self.root = tempfile.mkdtemp(prefix="faults")  # short: Ray's socket paths must fit 107 bytes
        self.env = dict(os.environ, TOY_SLEEP=TOY_SLEEP, RAY_TMPDIR=os.path.join(self.root, "ray"))
        os.makedirs(self.env["RAY_TMPDIR"])
        self.sessions: list[int] = []
        self._cache: dict[str, Any] = {}
        self.pending: dict[str, tuple[str, list[str], subprocess.Popen]] = {}  # references started ahead
        self._n = 0
        # Sizes: full and --quick.
        self.trials = 8 if self.quick else 20  # the serial (REINFORCE) search
        self.kills = 3 if self.quick else 10
        self.chaos_trials = 6 if self.quick else 12
        self.parallel_trials = 6 if self.quick else 10

    def path(self, name: str) -> str:
        self._n += 1
        return os.path.join(self.root, f"{self._n:02d}-{name}")

    def start(self, argv: list[str], env: dict | None = None, preexec_fn: Callable | None = None, module="nas.cli"):
        out = self.path("out")
        stdout, stderr = open(out + ".stdout", "w+"), open(out + ".stderr", "w+")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *argv],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self.sessions.append(proc.pid)
        proc.files = (stdout, stderr)  # type: ignore[attr-defined]
        proc.started = time.time()  # type: ignore[attr-defined]
        return proc

    def finish(self, proc, argv, *, timeout: float, kill_at: float | None = None, stop_when=None) -> Run:
        """Waits for ``proc``: SIGKILL at ``kill_at`` (absolute time) or at the first true ``stop_when()``."""
        killed = timed_out = False
        deadline = proc.started + timeout
        while proc.poll() is None:
            now = time.time()
            if kill_at is not None and now >= kill_at or stop_when is not None and stop_when():
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            if now >= deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                timed_out = True
                break
            time.sleep(0.02)
        proc.wait()
        wall = time.time() - proc.started
        leftover = end_session(proc.pid)
        self.sessions.remove(proc.pid)  # ended: its id may belong to someone else's process from now on
        stdout, stderr = proc.files
        stdout.seek(0)
        stderr.seek(0)
        run = Run(argv, None if killed or timed_out else proc.returncode, stdout.read(), stderr.read(), wall,
                  proc.started, killed, timed_out, leftover)  # fmt: skip
        stdout.close()
        stderr.close()
        return run

    def run(self, argv: list[str], *, timeout: float = 300, env=None, preexec_fn=None, module="nas.cli", **kw) -> Run:
        proc = self.start(argv, env=env, preexec_fn=preexec_fn, module=module)
        return self.finish(proc, argv, timeout=timeout, **kw)

    def close(self) -> None:
        """Ends the sessions not ended yet (a case that failed half-way) and removes the temporary root."""
        for sid in self.sessions:
            end_session(sid)
        shutil.rmtree(self.root, ignore_errors=True)

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def scrub(self, text: str) -> str:
        """A message with this run's temporary paths shortened (``TMP/...``)."""
        return text.replace(self.root, "TMP")


# ----- what the workdirs hold -----------------------------------------------------------------------------


def read_log(wd: str) -> list[dict]:
    """Every whole record of the trial log (a torn last line, without its newline, is not one)."""
    path = os.path.join(wd, "trials.jsonl")
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                records.append(json.loads(line))
    return records


def history(wd: str) -> list[tuple]:
    """(trial id, fingerprint, seed, terminal event, reward) per trial, as tests/nas/test_search_cli.py has it."""
    trials: dict[int, list] = {}
    for r in read_log(wd):
        if r["event"] == "proposed":
            trials[r["trial_id"]] = [r["trial_id"], r["fingerprint"], r["seed"], None, None]
        elif r["event"] in ("completed", "failed"):
            trials[r["trial_id"]][3] = r["event"]
            trials[r["trial_id"]][4] = r.get("reward")
    return [tuple(v) for _, v in sorted(trials.items())]


def lost(reference: list[tuple], got: list[tuple]) -> list[int]:
    """Trials the reference finished whose record is missing or different in ``got``."""
    by_id = {h[0]: h for h in got}
    return [h[0] for h in reference if h[3] is not None and by_id.get(h[0]) != h]


def recorded_twice(wd: str) -> list[str]:
    """Trial ids with more than one terminal record; fingerprints trained into the results twice."""
    log = read_log(wd)
    ends = collections.Counter(r["trial_id"] for r in log if r["event"] in ("completed", "failed"))
    doubled = [f"trial {tid}" for tid, n in sorted(ends.items()) if n > 1]
    fingerprints = {r["trial_id"]: r["fingerprint"] for r in log if r["event"] == "proposed"}
    trained = collections.Counter(
        fingerprints[r["trial_id"]] for r in log if r["event"] == "completed" and r.get("reused_from") is None
    )
    config = os.path.join(wd, "config.json")
    reuse = True
    if os.path.exists(config):
        with open(config) as f:
            reuse = json.load(f).get("search", {}).get("reuse_results", True)
    if reuse:
        doubled += [f"architecture {fp[:12]} trained {n} times" for fp, n in trained.items() if n > 1]
    return doubled


def attempt_errors(bench: Bench, wd: str) -> list[str]:
    """The distinct errors of failed attempts and trials in a log (trial ids and seeds left out), shortened."""
    seen: list[str] = []
    for r in read_log(wd):
        if r["event"] in ("attempt_failed", "failed") and r.get("error"):
            text = bench.scrub(r["error"])[:160]
            text = " ".join("N" if word.strip(",.:;()").isdigit() else word for word in text.split())
            if text not in seen:
                seen.append(text)
    return seen[:6]


def tree(path: str) -> dict[str, bytes | None] | None:
    """Every file's bytes and every directory under ``path`` (None: it does not exist)."""
    if not os.path.exists(path):
        return None
    out: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), path) + "/"] = None
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def tree_change(before, after) -> str:
    """'unchanged', or what differs."""
    if before == after:
        return "unchanged"
    if before is None:
        return "created: " + ", ".join(sorted(after)[:5])
    if after is None:
        return "removed"
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [f"{what}: {', '.join(keys[:4])}" for what, keys in (("added", added), ("removed", removed),
             ("changed", changed)) if keys]  # fmt: skip
    return "; ".join(parts)


def newest_snapshot(wd: str) -> str:
    snaps = sorted(
        n for n in os.listdir(os.path.join(wd, "snapshots")) if n.startswith("ctrl-") and n.endswith(".json")
    )
    return os.path.join(wd, "snapshots", snaps[-1])


def edit_json(path: str, change: Callable[[Any], None]) -> None:
    with open(path) as f:
        data = json.load(f)
    change(data)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


# ----- searches --------------------------------------------------------------------------------------------


def search_argv(wd: str, trials: int, evaluator: str, overrides: str) -> list[str]:
    return ["search", f"--experiment={EXPERIMENT}", f"--workdir={wd}", f"--evaluator={evaluator}",
            f"--max_trials={trials}", f"--params_override={overrides}", "--quiet"]  # fmt: skip


def serial_search(wd: str, trials: int) -> list[str]:
    return search_argv(wd, trials, f"{TOY}:slow", SERIAL)


def serial_local_search(wd: str, trials: int) -> list[str]:
    """The serial search in the driver's process (``search.executor=local``): the same history, no Ray start-up."""
    return search_argv(wd, trials, f"{TOY}:slow", SERIAL + ",search.executor=local")


def parallel_search(wd: str, trials: int, evaluator: str = f"{TOY}:slow", extra: str = "") -> list[str]:
    return search_argv(wd, trials, evaluator, PARALLEL + (f",{extra}" if extra else ""))


def local_search(wd: str, trials: int) -> list[str]:
    return search_argv(wd, trials, f"{TOY}:slow", LOCAL)


@dataclasses.dataclass
class Reference:
    """An uninterrupted search: its history, and how long it took to start and to run."""

    wd: str
    history: list[tuple]
    wall_s: float
    startup_s: float  # from the process's start to its `run` record

    @property
    def work_s(self) -> float:
        return max(self.wall_s - self.startup_s, 0.5)


def reference(bench: Bench, kind: str, make_argv: Callable[[str, int], list[str]], trials: int) -> Reference:
    """The uninterrupted search of a kind (run once per bench run, or finished if started ahead)."""
    key = f"reference-{kind}-{trials}"

    def make():
        if key in bench.pending:
            wd, argv, proc = bench.pending.pop(key)
        else:
            wd = bench.path(f"reference-{kind}")
            argv = make_argv(wd, trials)
            proc = bench.start(argv)
        run = bench.finish(proc, argv, timeout=300)
        if run.rc != 0:
            raise RuntimeError(f"the reference search failed ({run.status}): {run.stderr[-2000:]}")
        runs = [r for r in read_log(wd) if r["event"] == "run"]
        return Reference(wd, history(wd), run.wall_s, runs[0]["time"] - run.started)

    return bench.memo(key, make)


def start_reference(bench: Bench, kind: str, make_argv: Callable[[str, int], list[str]], trials: int) -> None:
    """Starts a reference search in the background (its timings are then not used: only its history)."""
    key = f"reference-{kind}-{trials}"
    if key not in bench._cache and key not in bench.pending:
        wd = bench.path(f"reference-{kind}")
        argv = make_argv(wd, trials)
        bench.pending[key] = (wd, argv, bench.start(argv))


def stopped_half_way(bench: Bench) -> str:
    """The serial search stopped as Ctrl-C stops it once half its trials are done (a workdir to damage)."""

    def make():
        # Its reference runs meanwhile: on two cores the two take little longer than one.
        start_reference(bench, "serial-local", serial_local_search, bench.trials)
        wd = bench.path("half-way")
        argv = serial_local_search(wd, bench.trials)
        proc = bench.start(argv)
        half = bench.trials // 2
        sent = False

        def half_done():
            nonlocal sent
            if not sent and sum(1 for h in history(wd) if h[3]) >= half:
                os.kill(proc.pid, signal.SIGINT)  # the driver only, as its own handler expects
                sent = True
            return False

        run = bench.finish(proc, argv, timeout=300, stop_when=half_done)
        if run.rc != 130:
            raise RuntimeError(f"the half-way search ended with {run.status}, not 130: {run.stderr[-2000:]}")
        return wd

    return bench.memo("half-way", make)


def copy_of(bench: Bench, wd: str, name: str) -> str:
    target = bench.path(name)
    shutil.copytree(wd, target)
    return target


# ----- rows ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    """One fault kind, as measured."""

    fault: str
    case: str
    tried: int = 0
    trials_lost: int | None = 0
    recorded_twice: int | None = 0
    statuses: list[str] = dataclasses.field(default_factory=list)
    message: str = ""
    ran: bool = True
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    wall_s: float = 0.0


def user_message(bench: Bench, runs: list[Run]) -> str:
    """What the user reads on stderr: each distinct line (a traceback by its last line), paths shortened."""
    seen: list[str] = []
    for run in runs:
        lines = run.lines()
        if "Traceback (most recent call last):" in run.stderr:
            lines = [f"traceback ({len(lines)} lines) ending: {lines[-1]}"]
        for line in lines:
            line = bench.scrub(line)
            if line not in seen:
                seen.append(line)
    return " | ".join(seen) if seen else "(nothing on stderr)"


def status_summary(statuses: list[str]) -> str:
    counts = collections.Counter(statuses)
    return ", ".join(f"{s} x{n}" if n > 1 else s for s, n in counts.items())


def judge(row: Row, ref: Reference, wd: str) -> None:
    """Fills in what was lost or recorded twice in ``wd`` against ``ref``."""
    got = history(wd)
    missing = lost(ref.history, got)
    twice = recorded_twice(wd)
    row.trials_lost = (row.trials_lost or 0) + len(missing)
    row.recorded_twice = (row.recorded_twice or 0) + len(twice)
    row.details.setdefault("history_equals_reference", []).append(got == ref.history)
    if missing:
        row.details.setdefault("lost", []).extend(missing)
    if twice:
        row.details.setdefault("recorded_twice", []).extend(twice)


# ----- cases -----------------------------------------------------------------------------------------------


def kill_plan(rng: random.Random, kills: int, trials: int, ref: Reference) -> list[tuple]:
    """Seeded kill moments spread over one search.

    One kill in five lands in start-up (imports, Ray, the restore): ("start-up", seconds after the
    command starts, drawn over the reference's start-up). The others land in the search: ("search",
    trials done, seconds): once the command has restored and that many trials are done, after a delay
    drawn over one trial's time, so kills fall in trials, log appends and snapshots alike. Search kills
    are ordered by progress, so that one search meets them all from its start to its end.
    """
    per_trial = ref.work_s / trials
    plan = [
        ("start-up", round(rng.uniform(0, ref.startup_s), 2))
        if rng.random() < 0.2
        else ("search", rng.randint(0, trials - 1), round(rng.uniform(0, per_trial), 2))
        for _ in range(kills)
    ]
    points = iter(sorted(p[1:] for p in plan if p[0] == "search"))
    return [p if p[0] == "start-up" else ("search", *next(points)) for p in plan]


def case_kill9(bench: Bench) -> Row:
    """The driver SIGKILLed (with its process group) at seeded random moments, the same command rerun each time."""
    ref = reference(bench, "serial", serial_search, bench.trials)
    row = Row("driver kill -9 at random moments, same command rerun", "kill9")
    for repeat in range(bench.args.repeats):
        rng = random.Random(f"kill9:{bench.seed}:{repeat}")
        wd = bench.path("kill9")
        log = os.path.join(wd, "trials.jsonl")
        argv = serial_search(wd, bench.trials)
        plan = kill_plan(rng, bench.kills, bench.trials, ref)
        kills, runs = 0, []
        for moment in [*plan, None]:
            proc = bench.start(argv)
            kill_at, due = None, None
            if moment is not None and moment[0] == "start-up":
                kill_at = proc.started + moment[1]
            elif moment is not None:
                due = progress_reached(log, trials_done=moment[1], delay=moment[2])
            run = bench.finish(proc, argv, timeout=300, kill_at=kill_at, stop_when=due)
            runs.append(run)
            row.statuses.append(run.status)
            if run.killed:
                kills += 1
                row.details.setdefault("kills", []).append(
                    {"moment": moment, "after_s": round(run.wall_s, 2), "trials_done": count_done(log)}
                )
                row.details.setdefault("leftover_processes_after_kill", []).append(run.leftover)
            elif run.rc == 0:
                break  # the search finished (before this kill, if one was planned)
        row.tried += kills
        row.details.setdefault("commands_run", []).append(len(runs))
        if runs[-1].rc != 0:
            row.details.setdefault("unfinished", []).append(runs[-1].status)
        judge(row, ref, wd)
        row.message = user_message(bench, [r for r in runs if not r.killed])
    return row


def count_done(log: str) -> int:
    """Terminal records in a trial log's bytes (cheap enough to poll)."""
    try:
        with open(log, "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return data.count(b'"event":"completed"') + data.count(b'"event":"failed"')


def progress_reached(log: str, trials_done: int, delay: float) -> Callable[[], bool]:
    """A ``stop_when``: true ``delay`` s after this command has restored (its `run` record) and ``trials_done`` are done."""
    try:
        with open(log, "rb") as f:
            runs_before = f.read().count(b'"event":"run"')
    except OSError:
        runs_before = 0
    fire_at = None

    def due() -> bool:
        nonlocal fire_at
        if fire_at is None:
            try:
                with open(log, "rb") as f:
                    data = f.read()
            except OSError:
                return False
            done = data.count(b'"event":"completed"') + data.count(b'"event":"failed"')
            if data.count(b'"event":"run"') > runs_before and done >= trials_done:
                fire_at = time.time() + delay
            return False
        return time.time() >= fire_at

    return due


def case_worker_death(bench: Bench) -> Row:
    """``chaos``: by seed a trial's worker process exits, it raises, returns NaN or succeeds; two workers.

    The expected outcome of each trial follows from its seed and the retry policy: worker deaths and
    exceptions retried up to ``search.max_attempts`` (2) then failed, NaN failed at once, the others
    completed with their score. A trial missing, or not as the policy says, is lost.
    """
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tests.nas.toy_evaluators import _score

    row = Row("worker process dies (chaos evaluator), two workers", "worker_death")
    wd = bench.path("chaos")
    run = bench.run(parallel_search(wd, bench.chaos_trials, f"{TOY}:chaos", "search.max_attempts=2"))
    row.statuses.append(run.status)
    log = read_log(wd)
    proposed = {r["trial_id"]: r for r in log if r["event"] == "proposed"}
    final = {r["trial_id"]: r for r in log if r["event"] in ("completed", "failed")}
    attempts = collections.Counter(r["trial_id"] for r in log if r["event"] == "started")
    deaths = [r for r in log if r["event"] in ("attempt_failed", "failed") and "worker died" in (r.get("error") or "")]
    row.tried = len(deaths)
    wrong, retry_mismatch = [], []
    for tid in range(bench.chaos_trials):
        rec, prop = final.get(tid), proposed.get(tid)
        if rec is None or prop is None:
            wrong.append(tid)
            continue
        reused_from = rec.get("reused_from")
        kind = proposed[reused_from if reused_from is not None else tid]["seed"] % 4  # a reused result: its source's
        if (rec.get("error") or "").startswith("identical to trial"):
            continue  # followed a failed twin: judged with the twin
        if kind == 3:
            ok = rec["event"] == "completed" and rec["reward"] == _score(prop["architecture"])
        else:
            ok = rec["event"] == "failed" and {0: "worker died", 1: "chaos: trial with seed", 2: "nan"}[kind] in (
                rec.get("error") or ""
            )
        if not ok:
            wrong.append(tid)
        if rec.get("reused_from") is None and attempts[tid] != (2 if kind in (0, 1) else 1):
            retry_mismatch.append((tid, attempts[tid]))
    row.trials_lost = len(wrong)
    twice = recorded_twice(wd)
    row.recorded_twice = len(twice)
    row.details.update(
        trials=bench.chaos_trials,
        outcomes=dict(collections.Counter(r["event"] for r in final.values())),
        not_as_the_policy_says=wrong,
        attempt_errors=attempt_errors(bench, wd),
        attempts_not_as_the_policy_says=retry_mismatch,
        recorded_twice=twice,
    )
    row.message = user_message(bench, [run])
    return row


def case_torn_log(bench: Bench) -> Row:
    """The last line of the trial log cut in half (a write interrupted by a crash), then ``resume``."""
    row = Row("torn last line of trials.jsonl, then resume", "torn_log")
    wd = copy_of(bench, stopped_half_way(bench), "torn")
    ref = reference(bench, "serial-local", serial_local_search, bench.trials)
    log = os.path.join(wd, "trials.jsonl")
    with open(log, "rb") as f:
        data = f.read()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    last = data[start:].rstrip(b"\n")
    with open(log, "wb") as f:
        f.write(data[: start + len(last) // 2])
    row.tried = 1
    row.details["torn_record"] = json.loads(last)["event"]
    run = bench.run(["resume", f"--workdir={wd}", "--quiet"])
    row.statuses.append(run.status)
    judge(row, ref, wd)
    row.message = user_message(bench, [run])
    return row


def case_garbage_snapshot(bench: Bench) -> Row:
    """The newest controller snapshot overwritten with junk, then ``resume``: a warning, an older snapshot."""
    row = Row("garbage newest controller snapshot, then resume", "garbage_snapshot")
    wd = copy_of(bench, stopped_half_way(bench), "garbage")
    ref = reference(bench, "serial-local", serial_local_search, bench.trials)
    snap = newest_snapshot(wd)
    with open(snap, "wb") as f:
        f.write(b"\x00\x13 not a snapshot {" * 64)
    row.tried = 1
    run = bench.run(["resume", f"--workdir={wd}", "--quiet"])
    row.statuses.append(run.status)
    judge(row, ref, wd)
    row.details["set_aside_as_corrupt"] = os.path.exists(snap + ".corrupt")
    row.details["warned"] = any(line.startswith("warning:") for line in run.lines())
    row.message = user_message(bench, [run])
    return row


def case_unknown_hparam(bench: Bench) -> Row:
    """A snapshot with a hyperparameter this version does not know: refused, nothing written, then rebuilt."""
    row = Row("snapshot with an unknown hyperparameter, resume, then resume --rebuild_controller", "unknown_hparam")
    wd = copy_of(bench, stopped_half_way(bench), "hparam")
    ref = reference(bench, "serial-local", serial_local_search, bench.trials)
    edit_json(newest_snapshot(wd), lambda d: d["controller"]["hparams"].update(added_by_the_fault_bench=1))
    row.tried = 1
    before = tree(wd)
    refused = bench.run(["resume", f"--workdir={wd}", "--quiet"])
    row.details["workdir_after_refusal"] = tree_change(before, tree(wd))
    row.details["message_lines"] = len(refused.lines())
    row.details["names_rebuild_controller"] = "--rebuild_controller" in refused.stderr
    rebuilt = bench.run(["resume", f"--workdir={wd}", "--rebuild_controller", "--quiet"])
    row.statuses += [refused.status, rebuilt.status]
    judge(row, ref, wd)
    row.message = user_message(bench, [refused])
    row.details["rebuild_stderr"] = user_message(bench, [rebuilt])
    return row


def case_edited_config(bench: Bench) -> Row:
    """``controller.policy_gradient.learning_rate`` changed in WORKDIR/config.json, then ``resume``: as measured.

    Trials lost are counted against what the workdir held before the edit (an accepted change would
    rightly change the trials after it); whether the history still equals the reference is noted.
    """
    row = Row("edited config.json (controller learning rate), then resume", "edited_config")
    wd = copy_of(bench, stopped_half_way(bench), "config")
    ref = reference(bench, "serial-local", serial_local_search, bench.trials)
    recorded = history(wd)

    def bump(d):
        pg = d["controller"]["policy_gradient"]
        row.details["learning_rate_from_to"] = [pg["learning_rate"], round(pg["learning_rate"] * 10, 10)]
        pg["learning_rate"] = round(pg["learning_rate"] * 10, 10)

    edit_json(os.path.join(wd, "config.json"), bump)
    row.tried = 1
    before = tree(wd)
    run = bench.run(["resume", f"--workdir={wd}", "--quiet"])
    row.statuses.append(run.status)
    row.details["workdir_after"] = tree_change(before, tree(wd))
    got = history(wd)
    row.trials_lost = len(lost(recorded, got))
    row.recorded_twice = len(recorded_twice(wd))
    if got != recorded:  # the search went on with the edited config
        row.details["history_equals_reference"] = got == ref.history
    row.details["message_lines"] = len(run.lines())
    row.message = user_message(bench, [run])
    return row


def case_full_disk(bench: Bench) -> Row:
    """A full disk while appending to the trial log, simulated with RLIMIT_FSIZE just above the log's size.

    The search first runs part of its trials; then the same command runs under the limit (SIGXFSZ
    ignored, so a write past it fails with EFBIG, as ENOSPC would), and again without it.
    """
    trials = bench.trials
    ref = reference(bench, "local", local_search, trials)
    row = Row("full disk while appending to trials.jsonl (RLIMIT_FSIZE), then the same command", "full_disk")
    for repeat in range(bench.args.repeats):
        rng = random.Random(f"full_disk:{bench.seed}:{repeat}")
        wd = bench.path("disk")
        first = bench.run(local_search(wd, trials // 2 - 1))
        if first.rc != 0:
            raise RuntimeError(f"the first part failed: {first.stderr[-2000:]}")
        log = os.path.join(wd, "trials.jsonl")
        size = os.path.getsize(log)
        limit = size + rng.randint(200, 4000)

        def limited(limit=limit):
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        full = bench.run(local_search(wd, trials), preexec_fn=limited)
        with open(log, "rb") as f:
            data = f.read()
        row.details.setdefault("log_bytes_limit_after", []).append([size, limit, len(data)])
        row.details.setdefault("log_ends_on_a_whole_line", []).append(data.endswith(b"\n"))
        row.details.setdefault("message_lines", []).append(len(full.lines()))
        again = bench.run(local_search(wd, trials))
        row.tried += 1
        row.statuses += [full.status, again.status]
        judge(row, ref, wd)
        row.message = user_message(bench, [full])
        row.details.setdefault("after_stderr", []).append(user_message(bench, [again]))
    return row


def bad_input_row(bench: Bench, fault: str, case: str, argv: list[str], wd: str, module="nas.cli", env=None) -> Row:
    """One bad input: exit status, stderr lines, and whether the workdir named changed."""
    row = Row(fault, case, tried=1, trials_lost=None, recorded_twice=None)
    before, recorded = tree(wd), history(wd)
    run = bench.run(argv, module=module, env=env)
    row.statuses.append(run.status)
    row.details["workdir"] = tree_change(before, tree(wd))
    row.details["message_lines"] = len(run.lines())
    if recorded:  # a search's workdir: what it recorded must still be there
        row.trials_lost = len(lost(recorded, history(wd)))
        row.recorded_twice = len(recorded_twice(wd))
    row.message = user_message(bench, [run])
    return row


def case_bad_arch(bench: Bench) -> Row:
    """``nas-train --arch=FILE`` with a malformed architecture JSON."""
    bad = bench.path("bad.json")
    with open(bad, "w") as f:
        f.write('{"blocks": [{"level": 3, "block_fn": "bottleneck", "parents": [0, 1]')
    wd = bench.path("train")
    argv = [f"--arch={bad}", "--experiment=synthetic_smoke", f"--workdir={wd}", "--quiet"]
    return bad_input_row(bench, "bad input: malformed architecture JSON (nas-train --arch)", "bad_arch", argv, wd,
                         module="nas.train_cli")  # fmt: skip


def case_bad_flag(bench: Bench) -> Row:
    """A misspelt flag on ``resume`` of an existing search."""
    ref = reference(bench, "serial-local", serial_local_search, bench.trials)
    wd = copy_of(bench, ref.wd, "flag")
    argv = ["resume", f"--workdir={wd}", "--max_trail=40"]
    return bad_input_row(bench, "bad input: misspelt flag (nas-search resume --max_trail)", "bad_flag", argv, wd)


def case_missing_dataset(bench: Bench) -> Row:
    """``spinenet49_coco_proxy`` with its own evaluator and ``data.annotation_file=/nonexistent``."""
    wd = bench.path("data")
    argv = ["search", f"--experiment={EXPERIMENT}", f"--workdir={wd}", "--max_trials=2",
            "--params_override=data.annotation_file=/nonexistent", "--quiet"]  # fmt: skip
    return bad_input_row(bench, "bad input: missing dataset (data.annotation_file=/nonexistent)", "missing_dataset",
                         argv, wd)  # fmt: skip


def case_corrupt_checkpoint(bench: Bench) -> Row:
    """``nas-train`` run again on a workdir whose newest checkpoint was cut in half (a tiny synthetic training)."""
    cache = bench.path("cache")
    wd = bench.path("ckpt")
    argv = ["--arch=preset:spinenet49", "--experiment=synthetic_smoke", f"--workdir={wd}", "--quiet",
            "--params_override=data.synthetic.num_images=24,data.holdout_size=8,trainer.epochs=1,trainer.warmup_steps=1"]  # fmt: skip
    env = {"SPINENET_NAS_CACHE": cache}
    first = bench.run(argv, module="nas.train_cli", env=env)
    if first.rc != 0:
        raise RuntimeError(f"the first training failed: {first.stderr[-2000:]}")
    ckpt = os.path.join(wd, "checkpoints")
    data = sorted(n for n in os.listdir(ckpt) if ".data-" in n)[-1]
    path = os.path.join(ckpt, data)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    row = bad_input_row(bench, "bad input: checkpoint cut in half (nas-train rerun)", "corrupt_checkpoint", argv, wd,
                        module="nas.train_cli", env=env)  # fmt: skip
    row.details["checkpoint"] = data
    return row


def case_hang(bench: Bench) -> Row:
    """A trial that hangs (``hangs_once``: every third trial's first attempt) under ``search.trial_timeout_s=3``.

    Expected: the hung attempt is killed at its time limit, retried, and the history equals the
    reference (``slow``, same random search). Without a working time limit the search never ends: the
    bench ends it at its own deadline, then runs ``resume`` (the marker makes the retry go through).
    """
    trials = bench.parallel_trials
    ref = reference(bench, "parallel", parallel_search, trials)
    row = Row("hung trial (search.trial_timeout_s=3), two workers", "hang")
    wd = bench.path("hang")
    argv = parallel_search(wd, trials, f"{HERE}:hangs_once", "search.trial_timeout_s=3,search.max_attempts=2")
    deadline = ref.wall_s * 3 + 30
    run = bench.run(argv, timeout=deadline, env={"TOY_HANG_S": "3600"})
    runs = [run]
    row.statuses.append(run.status)
    if run.timed_out:
        row.details["bench_deadline_s"] = round(deadline)
        again = bench.run(["resume", f"--workdir={wd}", "--quiet"], timeout=deadline, env={"TOY_HANG_S": "3600"})
        row.statuses.append(again.status)
        runs.append(again)
    trials_dir = os.path.join(wd, "trials")
    row.tried = sum(
        os.path.exists(os.path.join(trials_dir, d, "hung-once"))
        for d in (os.listdir(trials_dir) if os.path.isdir(trials_dir) else [])
    )
    log = read_log(wd)
    row.details["timeouts_recorded"] = sum(
        1 for r in log if r["event"] in ("attempt_failed", "failed") and "timeout" in (r.get("error") or "").lower()
    )
    row.details["wall_s"] = round(run.wall_s, 1)
    row.details["attempt_errors"] = attempt_errors(bench, wd)
    judge(row, ref, wd)
    row.message = user_message(bench, runs)
    return row


class Cluster:
    """Two ``ray start --block`` nodes on this machine, as tests/nas/test_ray_cluster.py starts them.

    The head at 127.0.0.2, the second node at 127.0.0.3 (other loopback addresses keep every
    connection on this machine), one CPU each, their own ports and temp dirs, token authentication on
    (the token in RAY_AUTH_TOKEN). Each node runs in a session of its own, which is how its
    processes are found (the raylet to kill) and ended (by pid).
    """

    HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"

    def __init__(self, bench: Bench):
        self.bench = bench
        self.token = secrets.token_hex(16)
        self.env = dict(bench.env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, TOY_SLEEP="1.5")
        self.port = free_port()
        self.address = f"{self.HEAD_IP}:{self.port}"
        self.head = self._node("head", ["--head", f"--node-ip-address={self.HEAD_IP}", f"--port={self.port}",
                                        "--include-dashboard=false", f"--dashboard-port={free_port()}",
                                        f"--ray-client-server-port={free_port()}"])  # fmt: skip
        self.worker = self._node("node2", [f"--address={self.address}", f"--node-ip-address={self.WORKER_IP}"])

    def _node(self, name: str, args: list[str]) -> subprocess.Popen:
        root = self.bench.path(name)
        os.makedirs(root)
        ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
        command = [ray_cli if os.path.exists(ray_cli) else shutil.which("ray"), "start", *args,
                   f"--temp-dir={os.path.join(root, 'tmp')}", "--num-cpus=1", "--object-store-memory=100000000",
                   "--disable-usage-stats", "--include-log-monitor=false", "--block",
                   f"--dashboard-agent-listen-port={free_port()}"]  # fmt: skip
        log = open(os.path.join(root, "log"), "w")
        proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.bench.sessions.append(proc.pid)
        deadline = time.time() + 120
        while time.time() < deadline:
            with open(os.path.join(root, "log")) as f:
                text = f.read()
            if "Ray runtime started" in text and self.raylets(proc):
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"ray start ({name}) did not start: {text[-2000:]}")

    @staticmethod
    def raylets(node: subprocess.Popen) -> list[int]:
        return [pid for pid in session_members(node.pid) if comm(pid) == "raylet"]

    def trial_starting_on_worker(self, wd: str) -> int | None:
        """A trial that started on the second node less than 0.5 s ago (its evaluator sleeps 1.5 s), or None.

        ``slow`` marks each call with ``called-PID-NS`` in the trial's directory: the pid tells the
        node (the second node's processes are in its session), the time that the trial is still running.
        """
        members = set(session_members(self.worker.pid))
        trials_dir = os.path.join(wd, "trials")
        for name in sorted(os.listdir(trials_dir)) if os.path.isdir(trials_dir) else []:
            for mark in os.listdir(os.path.join(trials_dir, name)):
                if mark.startswith("called-"):
                    _, pid, ns = mark.split("-")
                    if int(pid) in members and time.time_ns() - int(ns) < 5e8:
                        return int(name)
        return None

    def stop(self) -> None:
        for node in (self.worker, self.head):
            end_session(node.pid)
            node.wait()
            self.bench.sessions.remove(node.pid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def case_node_death(bench: Bench) -> Row:
    """The second node's raylet SIGKILLed while it runs a trial, two workers on a two-node cluster.

    Expected: the trial on the dead node is retried on the head, and the history equals the reference
    (the same random search, uninterrupted, on a local Ray).
    """
    trials = bench.parallel_trials
    ref = reference(bench, "parallel", parallel_search, trials)
    row = Row("second Ray node dies (raylet kill -9), two-node cluster", "node_death")
    cluster = Cluster(bench)
    try:
        wd = bench.path("node")
        argv = parallel_search(wd, trials, extra="search.max_attempts=2") + [f"--ray_address={cluster.address}"]
        env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster.token}
        proc = bench.start(argv, env=env)
        killed_at = victim = None
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline and killed_at is None:
            if count_done(os.path.join(wd, "trials.jsonl")) >= 2:
                victim = cluster.trial_starting_on_worker(wd)
            if victim is not None:
                for pid in cluster.raylets(cluster.worker):
                    os.kill(pid, signal.SIGKILL)
                    row.tried += 1
                killed_at = time.time()
            time.sleep(0.05)
        run = bench.finish(proc, argv, timeout=ref.wall_s * 4 + 240)
    finally:
        cluster.stop()
    row.statuses.append(run.status)
    log = read_log(wd)
    row.details["worker_deaths_recorded"] = sum(
        1 for r in log if r["event"] in ("attempt_failed", "failed") and "died" in (r.get("error") or "")
    )
    row.details["attempt_errors"] = attempt_errors(bench, wd)
    row.details["trial_on_the_dead_node"] = victim
    row.details["its_records"] = [r["event"] for r in log if r.get("trial_id") == victim]
    if killed_at is not None:
        row.details["seconds_from_kill_to_end"] = round(run.started + run.wall_s - killed_at, 1)
    judge(row, ref, wd)
    row.message = user_message(bench, [run])
    return row


CASES: dict[str, Callable[[Bench], Row]] = {
    "kill9": case_kill9,
    "worker_death": case_worker_death,
    "torn_log": case_torn_log,
    "garbage_snapshot": case_garbage_snapshot,
    "unknown_hparam": case_unknown_hparam,
    "edited_config": case_edited_config,
    "full_disk": case_full_disk,
    "bad_arch": case_bad_arch,
    "bad_flag": case_bad_flag,
    "missing_dataset": case_missing_dataset,
    "corrupt_checkpoint": case_corrupt_checkpoint,
    "hang": case_hang,
    "node_death": case_node_death,
}


# ----- output ----------------------------------------------------------------------------------------------


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def shorten(text: str, limit: int = 220) -> str:
    return text if len(text) <= limit else text[: limit - 80] + " ... " + text[-75:]


def table(rows: list[Row]) -> str:
    out = ["| fault | tried | trials lost | recorded twice | exit status | what the user sees |",
           "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        lost_cell = "n/a" if r.trials_lost is None else r.trials_lost
        twice_cell = "n/a" if r.recorded_twice is None else r.recorded_twice
        if not r.ran:
            lost_cell = twice_cell = "not run"
        out.append(
            f"| {cell(r.fault)} | {r.tried} | {lost_cell} | {twice_cell} | {cell(status_summary(r.statuses))} | "
            f"{cell(shorten(r.message))} |"
        )
    return "\n".join(out)


def references_agree(bench: Bench) -> bool | None:
    """Whether the serial search gave one history on Ray and in the driver's process (None: not both run)."""
    refs = [v for k, v in bench._cache.items() if k.startswith("reference-serial-")]
    return None if len(refs) < 2 else all(r.history == refs[0].history for r in refs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
    parser.add_argument("--repeats", type=int, default=1, help="repeats of the random cases (kill9, full_disk)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the moments and sizes of the faults")
    parser.add_argument("--quick", action="store_true", help="smaller searches (a smoke check of the bench)")
    parser.add_argument("--output", default=None, help=f"results JSON (default for a full run: {RESULTS})")
    args = parser.parse_args()
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    full_run = names == list(CASES) and not args.quick and args.repeats == 1 and args.seed == 0
    output = args.output or (RESULTS if full_run else None)

    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from bench import results_io

    run = results_io.start()
    bench = Bench(args)
    rows = []
    try:
        for name in names:
            t0 = time.time()
            try:
                row = CASES[name](bench)
            except Exception as e:  # noqa: BLE001 - a case that cannot run is reported, the others still run
                row = Row(name, name, ran=False, message=f"did not run: {type(e).__name__}: {bench.scrub(str(e))}")
                row.trials_lost = row.recorded_twice = None
            row.wall_s = round(time.time() - t0, 1)
            rows.append(row)
            print(f"{name}: {row.wall_s} s", file=sys.stderr, flush=True)
    finally:
        bench.close()
    wall = time.time() - run.started
    print(table(rows))
    print(f"\n{len(rows)} cases in {wall:.0f} s on {os.cpu_count()} CPUs; load average "
          f"{run.load_average_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")  # fmt: skip
    if output:
        result = {
            "seeds": [args.seed],
            "sizes": {
                "serial_trials": bench.trials,
                "kills": bench.kills,
                "chaos_trials": bench.chaos_trials,
                "parallel_trials": bench.parallel_trials,
                "repeats": args.repeats,
                "seed": args.seed,
            },
            "serial_references_agree_on_ray_and_local": references_agree(bench),
            "rows": [dataclasses.asdict(r) for r in rows],
        }
        print(f"wrote {results_io.write(output, run, result)}")
    else:
        print("(results not written: not a full default run; --output=PATH writes them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's quick-start search, run for several seeds, and what its trial logs say.

Runs, for each ``--seeds`` value S, the command the README's quick start gives (with the seed set)::

    nas-search search --experiment=synthetic_smoke --workdir=ROOT/seedS --params_override=search.seed=S

one search at a time, and computes from each workdir's ``trials.jsonl`` the mean reward and the share
of trials above AP 0.1 by thirds of the search (trials in id order), the distinct architectures, the
search's wall time (with the load average sampled while it ran) and the per-trial times (train,
evaluation, images/s). Writes ``bench/results/quickstart.json``, from which the README is rendered.

Ray starts its workers 15 steps nicer than the driver (Ray's ``worker_niceness``), which on an idle
machine changes nothing and on a shared one hands the trials' CPU to every other process; this bench
runs the searches with ``RAY_worker_niceness=0`` (workers as nice as the command), so that on a shared
machine the searches compete on equal terms, and records the load while they run.

A search takes about 10 minutes on 2 idle cores. ``--parallel N`` runs N searches at once (each then
shares the cores with the others: their wall times say so, with ``searches_at_once`` in the result);
their rewards do not depend on it beyond the order in which two trials in flight finish.

The script is resumable: a seed whose workdir holds a finished search and its timing record is not run
again; a seed whose search was cut short is continued by the same command, as the quick start says, and
its wall time (a sum of pieces) is then left out of the wall-time figures (``resumed``), while its
trials count as any others. ``--fresh`` starts such a search again from scratch instead.
``--summarize`` only reads the workdirs.

Usage::

    python bench/bench_quickstart.py [--seeds 0 1 2 3 4] [--root workdirs/bench_quickstart]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import results_io  # noqa: E402

EXPERIMENT = "synthetic_smoke"
AP_ABOVE = 0.1
RUN_RECORD = "bench_quickstart_run.json"


def user_command(seed: int, workdir: str = "W") -> list[str]:
    """The quick start's command, as a user types it."""
    return ["nas-search", "search", f"--experiment={EXPERIMENT}", f"--workdir={workdir}",
            f"--params_override=search.seed={seed}"]  # fmt: skip


def _read_log(workdir: str):
    from nas.trial_store import TrialStore

    return TrialStore(os.path.join(workdir, "trials.jsonl"), readonly=True)


def _finished(workdir: str) -> bool:
    """The search in ``workdir`` ran all its trials and the timing record was written after it."""
    if not os.path.exists(os.path.join(workdir, RUN_RECORD)) or not os.path.exists(
        os.path.join(workdir, "trials.jsonl")
    ):
        return False
    with open(os.path.join(workdir, RUN_RECORD)) as f:
        record = json.load(f)
    return record.get("returncode") == 0


def run_search(seed: int, workdir: str, at_once: int = 1, fresh: bool = False) -> dict[str, Any]:
    """Runs (or continues) one quick-start search; its wall time and the load while it ran."""
    resumed = os.path.exists(os.path.join(workdir, "trials.jsonl"))
    if resumed and fresh:
        print(f"seed {seed}: {workdir} holds an unfinished search; starting it again from scratch", flush=True)
        shutil.rmtree(workdir)
        resumed = False
    elif resumed:
        print(f"seed {seed}: continuing the unfinished search in {workdir}", flush=True)
    os.makedirs(os.path.dirname(workdir), exist_ok=True)
    argv = [sys.executable, "-m", "nas.cli", *user_command(seed, workdir)[1:], "--quiet"]
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(15.0):
            samples.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    load_start = os.getloadavg()
    started = time.time()
    sampler.start()
    env = dict(os.environ, RAY_worker_niceness="0")
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.time() - started
    done.set()
    sampler.join()
    record = {
        "seed": seed,
        "returncode": r.returncode,
        "wall_s": round(wall, 1),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "load_1min_samples": [round(x, 2) for x in samples],
        "niceness": os.nice(0),
        "searches_at_once": at_once,
        "resumed": resumed,
        "ray_worker_niceness": 0,
        "stderr_tail": r.stderr.strip().splitlines()[-5:],
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(os.path.join(workdir, RUN_RECORD), "w") as f:
        json.dump(record, f, indent=1)
    return record


def thirds(values: list[float]) -> list[list[float]]:
    """``values`` split into three consecutive parts of (nearly) equal size."""
    return [list(p) for p in np.array_split(np.asarray(values, dtype=float), 3)]


def summarize_search(seed: int, workdir: str) -> dict[str, Any]:
    """The figures of one finished search, from its trial log and its timing record."""
    store = _read_log(workdir)
    with open(os.path.join(workdir, RUN_RECORD)) as f:
        run = json.load(f)
    trials = sorted(store.trials.values(), key=lambda t: t.trial_id)
    done = [t for t in trials if t.status == "completed" and t.reward is not None]
    rewards = [float(t.reward) for t in done]
    aps = [float(t.metrics["AP"]) for t in done]
    per_trial = [
        {
            "trial_id": t.trial_id,
            "reward": t.reward,
            "AP": t.metrics.get("AP"),
            "trial_s": round(t.finished_at - t.started_at, 2) if t.started_at and t.finished_at else None,
            "train_s": round(t.metrics.get("train_s", float("nan")), 2),
            "eval_s": round(t.metrics.get("eval_s", float("nan")), 2),
            "images_per_s": round(t.metrics.get("images_per_s", float("nan")), 1),
            "reused": t.reused_from is not None,
        }
        for t in done
    ]
    samples = run.get("load_1min_samples") or [run["load_average_end"][0]]
    ended = datetime.datetime.strptime(run["date"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    return {
        "started_at": round(ended - run["wall_s"], 1),
        "ended_at": ended,
        "seed": seed,
        "command": " ".join(user_command(seed)),
        "trials": len(trials),
        "completed": len(done),
        "failed": sum(1 for t in trials if t.status == "failed"),
        "distinct_architectures": len({t.fingerprint for t in trials}),
        "mean_reward_by_thirds": [float(np.mean(p)) for p in thirds(rewards)],
        "share_above_ap_by_thirds": [float(np.mean(np.asarray(p) > AP_ABOVE)) for p in thirds(aps)],
        "best_reward": max(rewards),
        "wall_s": run["wall_s"],
        "load_average_start": run["load_average_start"],
        "load_average_end": run["load_average_end"],
        "load_1min_mean_during": round(float(np.mean(samples)), 2),
        "load_1min_max_during": round(float(np.max(samples)), 2),
        "searches_at_once": run.get("searches_at_once", 1),
        "resumed": run.get("resumed", False),
        "per_trial": per_trial,
    }


def overlaps(searches: list[dict[str, Any]]) -> list[float]:
    """Per search, the seconds during which another of these searches ran too."""
    out = []
    for s in searches:
        spans = sorted(
            (max(s["started_at"], o["started_at"]), min(s["ended_at"], o["ended_at"]))
            for o in searches
            if o is not s and o["started_at"] < s["ended_at"] and s["started_at"] < o["ended_at"]
        )
        covered, end = 0.0, float("-inf")
        for a, b in spans:  # the union of the overlapping spans
            a = max(a, end)
            if b > a:
                covered, end = covered + b - a, b
        out.append(round(covered, 1))
    return out


def summarize(searches: list[dict[str, Any]]) -> dict[str, Any]:
    """Across seeds: the mean (and range) of each figure by thirds, times, distinct architectures."""
    by_thirds = np.array([s["mean_reward_by_thirds"] for s in searches])
    share = np.array([s["share_above_ap_by_thirds"] for s in searches])
    trial = [t for s in searches for t in s["per_trial"] if not t["reused"]]

    def spread(key: str) -> dict[str, float]:
        values = np.array([t[key] for t in trial if t[key] is not None], dtype=float)
        return {
            "median": round(float(np.median(values)), 2),
            "p10": round(float(np.percentile(values, 10)), 2),
            "p90": round(float(np.percentile(values, 90)), 2),
        }

    # A continued search's wall time is a sum of pieces: only searches run in one go are timed.
    walls = np.array([s["wall_s"] for s in searches if not s["resumed"]] or [float("nan")])
    return {
        "seeds": [s["seed"] for s in searches],
        "mean_reward_by_thirds": [round(float(x), 3) for x in by_thirds.mean(axis=0)],
        "mean_reward_by_thirds_min": [round(float(x), 3) for x in by_thirds.min(axis=0)],
        "mean_reward_by_thirds_max": [round(float(x), 3) for x in by_thirds.max(axis=0)],
        "share_above_ap_by_thirds": [round(float(x), 3) for x in share.mean(axis=0)],
        "ap_above": AP_ABOVE,
        "searches_improved": int(np.sum(by_thirds[:, 2] > by_thirds[:, 0])),
        "distinct_architectures": [s["distinct_architectures"] for s in searches],
        "trials_per_search": [s["trials"] for s in searches],
        "failed_trials": sum(s["failed"] for s in searches),
        "wall_s": [s["wall_s"] for s in searches],
        "wall_s_timed": len([s for s in searches if not s["resumed"]]),
        "wall_s_median": round(float(np.median(walls)), 1),
        "wall_s_min": round(float(walls.min()), 1),
        "wall_s_max": round(float(walls.max()), 1),
        "load_1min_mean_during": [s["load_1min_mean_during"] for s in searches],
        "searches_at_once": [s["searches_at_once"] for s in searches],
        "shared_with_another_search_s": overlaps(searches),
        "trial_s": spread("trial_s"),
        "train_s": spread("train_s"),
        "eval_s": spread("eval_s"),
        "images_per_s": spread("images_per_s"),
        "trials_timed": len(trial),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="search.seed of each search")
    parser.add_argument("--root", default=os.path.join(ROOT, "workdirs", "bench_quickstart"),
                        help="the searches' workdirs are ROOT/seedS (kept: a rerun skips finished seeds)")  # fmt: skip
    parser.add_argument("--summarize", action="store_true", help="only read the finished workdirs; run nothing")
    parser.add_argument("--parallel", type=int, default=1, help="searches at once (default 1: the quick start alone)")
    parser.add_argument("--fresh", action="store_true", help="start unfinished searches again instead of continuing")
    parser.add_argument("--output", default=results_io.path("quickstart"))
    args = parser.parse_args()

    run = results_io.start()
    workdirs = {seed: os.path.join(args.root, f"seed{seed}") for seed in args.seeds}
    todo = [seed for seed in args.seeds if not _finished(workdirs[seed])]
    if todo and not args.summarize:
        at_once = max(1, min(args.parallel, len(todo)))

        def one(seed: int) -> dict[str, Any]:
            print(f"seed {seed}: running {' '.join(user_command(seed, workdirs[seed]))}", flush=True)
            return run_search(seed, workdirs[seed], at_once, args.fresh)

        with concurrent.futures.ThreadPoolExecutor(at_once) as pool:
            for seed, record in zip(todo, pool.map(one, todo)):
                if record["returncode"] != 0:
                    print(f"seed {seed}: exit {record['returncode']}: {record['stderr_tail']}", flush=True)
    searches = []
    for seed in args.seeds:
        workdir = workdirs[seed]
        if not _finished(workdir):
            print(f"seed {seed}: no finished search in {workdir}; left out", flush=True)
            continue
        s = summarize_search(seed, workdir)
        searches.append(s)
        print(
            f"seed {seed}: {s['wall_s']:.0f} s (load {s['load_1min_mean_during']}), mean reward by thirds "
            f"{[round(x, 3) for x in s['mean_reward_by_thirds']]}, share above AP {AP_ABOVE} "
            f"{[round(x, 2) for x in s['share_above_ap_by_thirds']]}, {s['distinct_architectures']} distinct",
            flush=True,
        )
    if not searches:
        return 1
    summary = summarize(searches)
    results_io.write(
        args.output,
        run,
        {"experiment": EXPERIMENT, "seeds": summary["seeds"], "summary": summary, "searches": searches},
    )
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

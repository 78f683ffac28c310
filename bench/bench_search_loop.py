"""Overhead of the search loop itself: trials per second with a trivial evaluator.

Runs the real loop (trial log with fsync, controller proposals and feedback,
snapshots, TensorBoard events) three ways in one run and prints them side by
side: in this process (no Ray), through local Ray with reused workers, and
through local Ray with a fresh worker process per trial (what the proxy
evaluator uses, since TensorFlow keeps GPU memory until its process ends).

Usage:
  python bench/bench_search_loop.py [--trials 200] [--algorithm random]

Goal (issue 6): over 20 trials per second through the loop and Ray on 2 CPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nas.quiet_tf import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from experiments.overrides import apply_overrides  # noqa: E402
from experiments.registry import get_experiment  # noqa: E402
from nas.search_runner import start_or_resume  # noqa: E402


def run(trials: int, algorithm: str, executor: str, fresh: bool, snapshot_every: int) -> float:
    config = apply_overrides(
        get_experiment("spinenet49_coco_proxy"),
        {
            "search.executor": executor,
            "search.evaluator": "tests.nas.toy_evaluators:trivial",
            "search.fresh_worker_per_trial": fresh,
            "search.trial_cpus": 1,
            "search.reuse_results": False,
            "search.snapshot_every": snapshot_every,
            "controller.algorithm": algorithm,
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        if executor == "ray":  # start Ray outside the timing, as a long search pays it once
            from nas.executors import init_ray

            init_ray(None)
        start = time.perf_counter()
        summary = start_or_resume(config, os.path.join(tmp, "s"), max_trials=trials, quiet=True)
        elapsed = time.perf_counter() - start
    assert summary["completed"] == trials, summary
    return trials / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--algorithm", default="random", help="random, evolution, reinforce or ppo")
    parser.add_argument("--snapshot_every", type=int, default=1)
    args = parser.parse_args()
    rows = [
        ("in-process (no Ray)", run(args.trials, args.algorithm, "local", False, args.snapshot_every)),
        ("local Ray, reused workers", run(args.trials, args.algorithm, "ray", False, args.snapshot_every)),
        (
            "local Ray, fresh worker per trial",
            run(max(10, args.trials // 10), args.algorithm, "ray", True, args.snapshot_every),
        ),
    ]
    print(f"search-loop overhead, {args.algorithm} controller, trivial evaluator, {os.cpu_count()} CPUs")
    print(f"{'path':<36} {'trials/s':>10} {'ms/trial':>10}")
    for name, rate in rows:
        print(f"{name:<36} {rate:>10.1f} {1000 / rate:>10.1f}")
    print(f"ratio Ray (reused workers) / in-process: {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()

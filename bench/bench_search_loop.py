"""Overhead of the search loop itself: trials per second with a trivial evaluator.

Runs the real loop (trial log with fsync, controller proposals and feedback,
snapshots, TensorBoard events) three ways in one run and prints them side by
side: in this process (no Ray), through local Ray with reused workers, and
through local Ray with a fresh worker process per trial (what the proxy
evaluator uses, since TensorFlow keeps GPU memory until its process ends).

Usage:
  python bench/bench_search_loop.py [--trials 100] [--algorithms random reinforce] [--snapshot_every 10]

Snapshots are written as a search writes them (``search.snapshot_every``, default that of a search).
Writes ``bench/results/search_loop.json`` (``--output``; ``--output=`` writes nothing), from which the
README's figures are rendered (``bench/readme_results.py``).

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

from bench import results_io  # noqa: E402
from experiments.overrides import apply_overrides  # noqa: E402
from experiments.registry import get_experiment  # noqa: E402
from experiments.search_config import SearchConfig  # noqa: E402
from nas.search_runner import start_or_resume  # noqa: E402

PATHS = {  # result key -> (printed name, executor, fresh worker per trial)
    "in_process": ("in-process (no Ray)", "local", False),
    "ray_reused_workers": ("local Ray, reused workers", "ray", False),
    "ray_fresh_worker": ("local Ray, fresh worker per trial", "ray", True),
}


def _snapshot_bytes(workdir: str) -> list[int]:
    folder = os.path.join(workdir, "snapshots")
    if not os.path.isdir(folder):
        return []
    return [os.path.getsize(os.path.join(folder, n)) for n in sorted(os.listdir(folder)) if n.endswith(".json")]


def run(trials: int, algorithm: str, executor: str, fresh: bool, snapshot_every: int) -> dict:
    """One search of ``trials`` trivial trials; its rate and the snapshots it kept."""
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
        snapshots = _snapshot_bytes(os.path.join(tmp, "s"))
    assert summary["completed"] == trials, summary
    return {
        "trials": trials,
        "seconds": elapsed,
        "trials_per_s": trials / elapsed,
        "snapshots_kept": len(snapshots),
        "snapshot_bytes_max": max(snapshots, default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--algorithms", nargs="+", default=["random", "reinforce"],
                        help="random, evolution, reinforce or ppo")  # fmt: skip
    parser.add_argument("--snapshot_every", type=int, default=SearchConfig().snapshot_every)
    parser.add_argument("--output", default=results_io.path("search_loop"), help="result file ('': none)")
    args = parser.parse_args()
    started = results_io.start()
    stored = {}
    for algorithm in args.algorithms:
        stored[algorithm] = {
            # A fresh worker per trial costs a process start-up each: a tenth of the trials (at least 10).
            key: run(
                args.trials if not fresh else max(10, args.trials // 10),
                algorithm,
                executor,
                fresh,
                args.snapshot_every,
            )  # fmt: skip
            for key, (_, executor, fresh) in PATHS.items()
        }
        rows = stored[algorithm]
        print(f"search-loop overhead, {algorithm} controller, trivial evaluator, {os.cpu_count()} CPUs, "
              f"snapshots every {args.snapshot_every} results")  # fmt: skip
        print(f"{'path':<36} {'trials':>7} {'trials/s':>10} {'ms/trial':>10}")
        for key, (name, _, _) in PATHS.items():
            rate = rows[key]["trials_per_s"]
            print(f"{name:<36} {rows[key]['trials']:>7} {rate:>10.1f} {1000 / rate:>10.1f}")
        ratio = rows["ray_reused_workers"]["trials_per_s"] / rows["in_process"]["trials_per_s"]
        print(f"ratio Ray (reused workers) / in-process: {ratio:.2f}")
    if args.output:
        figures = {"settings": {"trials": args.trials, "snapshot_every": args.snapshot_every}, "seeds": [0],
                   "algorithms": stored}  # fmt: skip
        print(f"wrote {results_io.write(args.output, started, figures)}")


if __name__ == "__main__":
    main()

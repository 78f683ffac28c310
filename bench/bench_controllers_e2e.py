"""REINFORCE against regularized evolution through ``nas-search search`` on Ray: asynchrony counts.

``bench_controllers.py`` drives each algorithm in one process, one proposal and one result at a
time. A real search is asynchronous: ``search.max_concurrent`` trials are in flight, results come
back in whatever order the workers finish, and the controller proposes while it still waits for the
rewards of earlier proposals (staleness). This bench runs the command a user types,

    nas-search search --experiment=spinenet49_coco_proxy[_evolution] --evaluator=bench.bench_controllers_e2e:NAME
        --max_trials=300 --params_override=search.seed=S,search.max_concurrent=8,search.trial_cpus=0.25 ...

on a local Ray with 2 CPUs, where the evaluator is one of ``bench_controllers``'s rewards (the same
functions) that also sleeps a random 0-0.2 s, so that eight trials run at once and finish out of
order. ``noisy_ap`` adds its Gaussian noise from the trial's seed and architecture (an identical
architecture proposed again is reused by the search, as a real one is). Each run reads the search's
own trial log; the figure for a run at N trials is the noise-free reward of the architecture with the
best observed reward among the first N results (in the order they were recorded).

The algorithms are the experiments' own settings: ``spinenet49_coco_proxy`` (the sample-efficient
REINFORCE) and ``spinenet49_coco_proxy_evolution`` (regularized evolution), each with its own search
seeds (the report seeds of ``bench_controllers``, offset per algorithm so that no two runs share a
seed). Writes ``bench/results/controllers_e2e.json``.

Usage::

    python bench/bench_controllers_e2e.py                       # 3 rewards x 2 algorithms x 5 seeds
    python bench/bench_controllers_e2e.py --rewards noisy_ap --seeds 2 --trials 60 --output=
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import results_io  # noqa: E402
from bench.bench_controllers import REPORT_SEEDS, REWARDS, best_so_far, summarize, superiority  # noqa: E402

ALGORITHMS = {"reinforce": "spinenet49_coco_proxy", "evolution": "spinenet49_coco_proxy_evolution"}
DEFAULT_REWARDS = ("noisy_ap", "connection_pattern", "deceptive_trap")
CHECKPOINTS = (50, 100, 150, 200, 250, 300)
MAX_SLEEP_S = 0.2
_SPACE: dict = {}


# ----- the evaluators (run in Ray workers) -------------------------------------------------------


def _evaluate(name: str, architecture: dict, seed: int) -> dict:
    from search_space import SearchSpace, architecture_from_dict

    arch, _ = architecture_from_dict(architecture)
    reward = REWARDS[name]
    # One space per worker process: the rewards cache their encoding by the space (bench_controllers._CACHE).
    space = _SPACE.setdefault("space", SearchSpace())
    true = reward.fn(arch, space)
    rng = random.Random(f"{seed}:{arch.fingerprint()}")
    time.sleep(rng.uniform(0.0, MAX_SLEEP_S))  # finish out of order
    observed = true + (rng.gauss(0.0, reward.noise_std) if reward.noise_std else 0.0)
    return {"AP": observed, "true_reward": true}


def noisy_ap(architecture, seed, trial_dir):
    return _evaluate("noisy_ap", architecture, seed)


def connection_pattern(architecture, seed, trial_dir):
    return _evaluate("connection_pattern", architecture, seed)


def deceptive_trap(architecture, seed, trial_dir):
    return _evaluate("deceptive_trap", architecture, seed)


def match_spinenet49(architecture, seed, trial_dir):
    return _evaluate("match_spinenet49", architecture, seed)


def level_profile(architecture, seed, trial_dir):
    return _evaluate("level_profile", architecture, seed)


def needle(architecture, seed, trial_dir):
    return _evaluate("needle", architecture, seed)


# ----- the runs ---------------------------------------------------------------------------------


def run_search(algorithm: str, reward: str, seed: int, trials: int, concurrent: int, workdir: str) -> dict:
    """One ``nas-search search`` as a user types it; returns its curve and timings from the trial log."""
    cmd = [
        sys.executable, "-m", "nas.cli", "search", f"--experiment={ALGORITHMS[algorithm]}",
        f"--evaluator=bench.bench_controllers_e2e:{reward}", f"--max_trials={trials}", f"--workdir={workdir}",
        f"--params_override=search.seed={seed},search.max_concurrent={concurrent},"
        f"search.trial_cpus={2 / concurrent},search.fresh_worker_per_trial=false,search.snapshot_every=25",
        "--quiet", "--json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT}
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.time() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    observed, true, order, fingerprints = [], [], [], set()
    with open(os.path.join(workdir, "trials.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["event"] == "proposed":
                fingerprints.add(r["fingerprint"])
            elif r["event"] == "completed":
                observed.append(r["reward"])
                true.append(r["metrics"]["true_reward"])
                order.append(r["trial_id"])
    curve = best_so_far(observed, true)
    out_of_order = sum(1 for a, b in zip(order, order[1:]) if b < a)
    return {
        "algorithm": algorithm,
        "reward": reward,
        "seed": seed,
        "completed": len(observed),
        "wall_s": round(wall, 1),
        "results_out_of_order": out_of_order,
        "best_at": {str(n): float(curve[n - 1]) for n in sorted({*CHECKPOINTS, trials}) if n <= len(curve)},
        "distinct_architectures": len(fingerprints),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rewards", default=",".join(DEFAULT_REWARDS), help="comma-separated bench rewards")
    parser.add_argument("--seeds", type=int, default=len(REPORT_SEEDS), help="searches per (algorithm, reward)")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=8, help="search.max_concurrent (2 CPUs shared)")
    parser.add_argument("--output", default=results_io.path("controllers_e2e"), help="result file ('': none)")
    args = parser.parse_args(argv)
    run = results_io.start(None if argv is None else [sys.argv[0], *argv])
    rewards = [r for r in args.rewards.split(",") if r]
    unknown = [r for r in rewards if r not in REWARDS]
    if unknown:
        parser.error(f"unknown reward(s) {unknown}; known: {sorted(REWARDS)}")
    # Own seeds per algorithm: reinforce 1000.., evolution 2000.. (no shared draws).
    seeds = {alg: [REPORT_SEEDS[0] + 1000 * k + i for i in range(args.seeds)] for k, alg in enumerate(ALGORITHMS)}
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        for reward in rewards:
            for i in range(args.seeds):
                for alg in ALGORITHMS:  # alternate, so a change of machine load hits both
                    seed = seeds[alg][i]
                    r = run_search(
                        alg, reward, seed, args.trials, args.concurrent, os.path.join(tmp, f"{alg}-{reward}-{seed}")
                    )
                    runs.append(r)
                    print(f"{reward:<20} {alg:<10} seed {seed}: best at {args.trials} {r['best_at'].get(str(args.trials), float('nan')):.4f}"
                          f" ({r['completed']} results, {r['results_out_of_order']} out of order, {r['wall_s']} s)", flush=True)  # fmt: skip
    summary = {}
    for reward in rewards:
        final = {alg: [r["best_at"][str(args.trials)] for r in runs if r["reward"] == reward and r["algorithm"] == alg
                       and str(args.trials) in r["best_at"]] for alg in ALGORITHMS}  # fmt: skip
        summary[reward] = {
            "shape": REWARDS[reward].shape,
            **{alg: summarize(v) for alg, v in final.items()},
            "reinforce_over_evolution": superiority(final["reinforce"], final["evolution"]),
            "goal_met": bool(np.median(final["reinforce"]) >= np.median(final["evolution"])),
        }
        s = summary[reward]
        print(f"{reward:<20} median best at {args.trials}: reinforce {s['reinforce']['median']:.4f}, evolution "
              f"{s['evolution']['median']:.4f}; P(reinforce > evolution) {s['reinforce_over_evolution']:.2f}")  # fmt: skip
    if args.output:
        stored = {"trials": args.trials, "concurrent": args.concurrent, "max_sleep_s": MAX_SLEEP_S,
                  "seeds": seeds, "experiments": ALGORITHMS, "summary": summary, "runs": runs}  # fmt: skip
        print(f"wrote {results_io.write(args.output, run, stored)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the embedded `synthetic_smoke` reward says about architectures: presets over seeds, random ones.

Trains each architecture with `nas-train` (one process per training) under the experiment's own recipe
and reads AP from its ``metrics.json``, two ways:

- as a search's trial runs (``trial``): the architecture from a JSON file, the process pinned to one
  core, so TensorFlow runs one thread, as in a search slot of ``search.trial_cpus=1``;
- as a user types it (``typed``): ``nas-train --arch=preset:NAME --experiment=synthetic_smoke
  --workdir=W --seed=S``, unpinned, so TensorFlow runs one thread per core of the machine. The thread
  count changes the order of floating-point sums and, over 400 steps, the trained model: the two ways
  differ on a machine with more than one core.

What is trained:

- SpineNet-49 and the ResNet-like ordering (presets, at the experiment's scaling), each with seeds
  ``--seeds`` (default 0, 1, 2), both ways: the spread a seed alone makes;
- ``--random`` architectures proposed by random search over the experiment's space (seed
  ``--arch_seed``), one seed each, as trials: how rewards spread over the space, how many stay near zero.

Writes ``bench/results/synthetic_ap.json`` (with the command, commit, cores, load and date), which the
README's figures are rendered from (``bench/readme_results.py``).

Usage::

    python bench/bench_synthetic_ap.py [--seeds 0 1 2] [--random 10] [--jobs 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import results_io  # noqa: E402

RESULTS = results_io.path("synthetic_ap")
EXPERIMENT = "synthetic_smoke"
NEAR_ZERO = 0.05  # AP below this: the architecture learned (almost) nothing


def _architectures(num_random: int, arch_seed: int) -> dict[str, dict]:
    from controller.random_search import RandomSearch
    from experiments.registry import get_experiment
    from search_space import DecisionEncoding, architecture_to_dict, resnet_like, spinenet49

    config = get_experiment(EXPERIMENT)
    scaling = config.search_space.scaling
    archs = {
        "spinenet49": architecture_to_dict(spinenet49(scaling)),
        "resnet_like": architecture_to_dict(resnet_like(scaling)),
    }
    controller = RandomSearch(DecisionEncoding(config.search_space), seed=arch_seed)
    for i in range(num_random):
        archs[f"random_{i:02d}"] = architecture_to_dict(controller.propose().architecture)
    return archs


def typed_command(preset: str, seed: int, workdir: str = "W") -> list[str]:
    """The nas-train command a user types for a preset."""
    return ["nas-train", f"--arch=preset:{preset}", f"--experiment={EXPERIMENT}", f"--workdir={workdir}",
            f"--seed={seed}"]  # fmt: skip


def _train(name: str, arch: dict, seed: int, scratch: str, core: int | None) -> dict:
    """One nas-train run; its metrics (or its error).

    ``core`` given: as a search's trial runs (the architecture from a file, pinned to that core);
    None: as a user types it (``--arch=preset:NAME``, every core).
    """
    mode = "trial" if core is not None else "typed"
    workdir = os.path.join(scratch, f"{name}-seed{seed}-{mode}")
    if core is None:
        argv = [sys.executable, "-m", "nas.train_cli", *typed_command(name, seed, workdir)[1:], "--quiet"]
        pin = None
    else:
        arch_file = workdir + ".json"
        with open(arch_file, "w") as f:
            json.dump(arch, f)
        argv = [
            sys.executable, "-m", "nas.train_cli", f"--arch={arch_file}", f"--experiment={EXPERIMENT}",
            f"--workdir={workdir}", f"--seed={seed}", "--quiet",
        ]  # fmt: skip

        def pin():
            os.sched_setaffinity(0, {core})

    start = time.time()
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, preexec_fn=pin)
    threads = 1 if core is not None else len(os.sched_getaffinity(0))
    out = {"arch": name, "seed": seed, "mode": mode, "threads": threads, "wall_s": round(time.time() - start, 1)}
    if r.returncode != 0:
        return {**out, "error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    with open(os.path.join(workdir, "metrics.json")) as f:
        metrics = json.load(f)
    metrics = metrics.get("metrics", metrics)
    return {**out, "AP": metrics["AP"], "AP50": metrics["AP50"], "images_per_s": metrics.get("images_per_s")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the preset trainings")
    parser.add_argument("--random", type=int, default=10, help="random architectures, one seed each")
    parser.add_argument("--arch_seed", type=int, default=0, help="seed of the random search that proposes them")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="trainings at once")
    parser.add_argument("--no_typed", action="store_true", help="skip the presets trained as a user types the command")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args()

    run = results_io.start()
    archs = _architectures(args.random, args.arch_seed)
    presets = ("spinenet49", "resnet_like")
    runs = [(n, s, "trial") for n in presets for s in args.seeds]
    runs += [(n, 0, "trial") for n in archs if n.startswith("random_")]
    if not args.no_typed:
        runs += [(n, s, "typed") for n in presets for s in args.seeds]
    scratch = tempfile.mkdtemp(prefix="synthetic_ap_")
    cores = sorted(os.sched_getaffinity(0))
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = [
                pool.submit(
                    _train, n, archs[n], s, scratch, cores[i % args.jobs % len(cores)] if m == "trial" else None
                )
                for i, (n, s, m) in enumerate(runs)
            ]
            trials = []
            for f in futures:
                trials.append(f.result())
                t = trials[-1]
                print(f"{t['arch']:<12} seed {t['seed']} {t['mode']}: {t.get('AP', t.get('error'))} ({t['wall_s']} s)",
                      flush=True)  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def aps(prefix: str, mode: str = "trial") -> list[float]:
        return [t["AP"] for t in trials if t["arch"].startswith(prefix) and t["mode"] == mode and "AP" in t]

    summary = {}
    for name in presets:
        values = aps(name)
        summary[name] = {"seeds": args.seeds, "AP": values, "min": min(values), "max": max(values)}
        summary[name]["mean"] = statistics.mean(values)
    if not args.no_typed:
        summary["typed"] = {
            "threads": len(cores),
            "command": " ".join(typed_command("NAME", 0)).replace("--seed=0", "--seed=S"),
            **{name: {"seeds": args.seeds, "AP": aps(name, "typed")} for name in presets},
        }
    random_aps = aps("random_")
    summary["random"] = {
        "count": len(random_aps),
        "AP": random_aps,
        "median": statistics.median(random_aps),
        "max": max(random_aps),
        "near_zero": sum(1 for a in random_aps if a < NEAR_ZERO),
        "near_zero_below": NEAR_ZERO,
    }
    figures = {"experiment": EXPERIMENT, "seeds": args.seeds, "arch_seed": args.arch_seed, "trials": trials,
               "summary": summary}  # fmt: skip
    results_io.write(args.output, run, figures)
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.output}")
    return 0 if all("AP" in t for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())

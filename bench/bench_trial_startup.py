"""Wall time of one short synthetic trial: our CPU settings against TensorFlow's defaults.

A search's trial on CPU is short, so what happens around the training steps
matters as much as the steps: tracing, graph optimisation, and tearing the
input pipelines down. This bench runs ``train_and_evaluate`` on the
``synthetic_smoke`` experiment (SpineNet-49 topology, seed 0) in fresh
subprocesses pinned to one core (a search slot), alternating the settings,
and prints the medians side by side:

- **ours**: the defaults (``data.autotune=false``; on CPU
  ``trainer.graph_optimizer`` resolves to off);
- **grappler on**: ours with ``trainer.graph_optimizer=on``;
- **tf defaults**: ``data.autotune=true`` and ``trainer.graph_optimizer=on``,
  i.e. tf.data's model-based autotuning and Grappler as TensorFlow ships them.

Columns: wall time of the whole call, its training part (``train_s``:
pipeline, tracing, steps, final checkpoint, pipeline teardown), its
evaluation part (``eval_s``), and steady-state training images/s.

Usage::

    python bench/bench_trial_startup.py [--steps 100] [--rounds 3]

Writes ``bench/results/trial_startup.json`` (``--output``; ``--output=`` writes nothing), from which
the README's figures are rendered (``bench/readme_results.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import results_io  # noqa: E402

SETTINGS = {
    "ours": "",
    "grappler on": "trainer.graph_optimizer=on",
    "tf defaults": "data.autotune=true,trainer.graph_optimizer=on",
}

_CHILD = r"""
import dataclasses, json, os, sys, time
sys.path.insert(0, {root!r})
from nas.quiet_tf import import_tensorflow_quietly
import_tensorflow_quietly()
from experiments.registry import configure_experiment
from proxy_trainer.training.trainer import train_and_evaluate
from search_space import spinenet49

overrides = ",".join(o for o in ({overrides!r}, "trainer.train_steps={steps}") if o)
config = configure_experiment("synthetic_smoke", params_override=overrides)
arch = dataclasses.replace(spinenet49(), scaling=config.search_space.scaling)
start = time.perf_counter()
metrics = train_and_evaluate(arch, config, {workdir!r}, seed=0)
metrics["wall_s"] = time.perf_counter() - start
print("RESULT " + json.dumps(metrics))
"""


def run_once(overrides: str, steps: int, core: int) -> dict:
    """One trial in a fresh process pinned to ``core``; returns its metrics plus ``wall_s``."""
    with tempfile.TemporaryDirectory() as workdir:
        code = _CHILD.format(root=ROOT, overrides=overrides, steps=steps, workdir=workdir)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, {core}),
            timeout=1200,
        )
    if proc.returncode != 0:
        raise SystemExit(f"trial failed ({overrides or 'ours'}):\n{proc.stderr[-3000:]}")
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps per trial")
    parser.add_argument("--rounds", type=int, default=3, help="trials per setting (alternated)")
    parser.add_argument("--core", type=int, default=0, help="CPU core the trials are pinned to")
    parser.add_argument("--output", default=results_io.path("trial_startup"), help="result file ('': none)")
    args = parser.parse_args(argv)
    run = results_io.start(None if argv is None else [sys.argv[0], *argv])

    # The synthetic dataset and its cache are written once, before anything is timed.
    run_once("", 2, args.core)
    results: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, overrides in SETTINGS.items():
            results[name].append(run_once(overrides, args.steps, args.core))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"one synthetic_smoke trial (SpineNet-49, {args.steps} steps of 8 images, 64 px), one core, "
          f"median of {args.rounds}")  # fmt: skip
    print(f"{'setting':<14}{'wall s':>9}{'train_s':>9}{'eval_s':>9}{'train img/s':>13}")
    for name in SETTINGS:
        print(
            f"{name:<14}{median(name, 'wall_s'):>9.1f}{median(name, 'train_s'):>9.1f}"
            f"{median(name, 'eval_s'):>9.1f}{median(name, 'images_per_s'):>13.1f}"
        )
    ours, tf_defaults = median("ours", "wall_s"), median("tf defaults", "wall_s")
    print(f"ratio wall ours / tf defaults: {ours / tf_defaults:.2f}")
    if args.output:
        keys = ("wall_s", "train_s", "eval_s", "images_per_s")
        figures = {
            "settings": {
                "steps": args.steps,
                "rounds": args.rounds,
                "core": args.core,
                "experiment": "synthetic_smoke",
            },
            "seeds": [0],
            "overrides": SETTINGS,
            "runs": {name: [{k: r[k] for k in keys} for r in results[name]] for name in SETTINGS},
            "median": {name: {k: median(name, k) for k in keys} for name in SETTINGS},
        }
        print(f"wrote {results_io.write(args.output, run, figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

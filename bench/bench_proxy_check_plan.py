"""What a COCO proxy check costs: the dry run of a 20-architecture x 2-seed check, at a measured step time.

Before a search on COCO, ``nas-search proxy-check`` should measure whether its reward ranks
architectures as a longer training does (README, *Checking the proxy*). This bench runs the plan of that
check through the command line, as a user would, with ``--dry_run`` (which needs no data and writes
nothing)::

    python -m nas.cli proxy-check --experiment=spinenet49_coco_proxy --workdir=W --archs=18 --seeds=2 \\
        --dry_run --step_seconds=S --json

The presets ``spinenet49`` and ``resnet_like`` plus 18 random architectures (sample seed 0), 2 seeds each,
under the proxy recipe and the default 4x reference. ``S``, the seconds of one training step of the
recipe (batch 64 at 512 px), is not typed in: it comes from the stored proxy-training measurement
``bench/results/training.json`` (``bench/bench_training.py``), as the recipe's batch over the trainer's
measured end-to-end training rate (``trainer.train_images_per_s``: our trainer at 512 px with its input
pipeline, on that machine's CPU cores; the step there was batch 8, and a step of 64 images is taken to
cost 64 / 8 times as much). Where that file also holds a GPU measurement (its ``bf16_xla`` section,
``on_gpu``), the plan is projected at that rate too. The evaluations, which the dry run leaves out, are
projected apart at the measured evaluation rate: the proxy recipe evaluates the held-out images after
every epoch, the reference once.

Usage::

    python bench/bench_proxy_check_plan.py

Writes ``bench/results/proxy_check_plan.json`` (``--output``), rendered into the README by
``bench/readme_results.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import results_io  # noqa: E402

EXPERIMENT = "spinenet49_coco_proxy"
ARCHS = 18  # random ones, besides the two presets: 20 architectures
SEEDS = 2
SAMPLE_SEED = 0  # proxy-check's default --sample_seed
TRAINING_RESULT = "training"


def step_time_sources(training: dict, batch_size: int) -> list[dict]:
    """Seconds per training step of ``batch_size`` images from the stored training measurement.

    One entry for the CPU trainer run (``trainer``) and, where measured on a GPU, one for its bf16 + XLA
    run (``bf16_xla``, anchors labelled on the device), each with the rate it rests on and where it is.
    """
    out = []
    trainer = training.get("trainer")
    if trainer:
        rate = trainer["train_images_per_s"]
        out.append({
            "device": "cpu", "field": "trainer.train_images_per_s", "train_images_per_s": rate,
            "eval_images_per_s": trainer["eval_images_per_s"],
            "measured_batch_size": training["settings"]["batch_size"], "step_seconds": batch_size / rate,
        })  # fmt: skip
    gpu = training.get("bf16_xla")
    if gpu and gpu.get("on_gpu"):
        rates = gpu["by_labelling"]["device"]
        out.append({
            "device": "gpu", "field": "bf16_xla.by_labelling.device.train_images_per_s",
            "train_images_per_s": rates["train_images_per_s"], "eval_images_per_s": rates["eval_images_per_s"],
            "measured_batch_size": gpu["batch_size"], "step_seconds": batch_size / rates["train_images_per_s"],
        })  # fmt: skip
    return out


def dry_run(step_seconds: float, workdir: str) -> tuple[list[str], dict]:
    """The command line (as typed) and the plan that ``proxy-check --dry_run --json`` prints."""
    flags = [
        "proxy-check", f"--experiment={EXPERIMENT}", f"--workdir={workdir}", f"--archs={ARCHS}", f"--seeds={SEEDS}",
        "--dry_run", f"--step_seconds={step_seconds:.4g}",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "nas.cli", *flags, "--json"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"proxy-check --dry_run failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    if os.path.exists(workdir):
        raise RuntimeError(f"proxy-check --dry_run wrote {workdir}; a dry run must write nothing")
    typed = ["--workdir=W" if f.startswith("--workdir=") else f for f in flags]  # the temporary path as a placeholder
    return ["nas-search", *typed], json.loads(done.stdout)


def evaluation_hours(plan: dict, eval_images: int, eval_images_per_s: float) -> dict:
    """Hours of the evaluations the dry run leaves out: per epoch for the proxy recipe, once for the reference."""
    out = {}
    for name, r in plan["recipes"].items():
        evaluations = int(r["epochs"]) if r["eval_every_epoch"] and r["epochs"] else 1
        out[name] = {
            "evaluations_per_trial": evaluations,
            "hours": r["trials"] * evaluations * eval_images / eval_images_per_s / 3600,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=results_io.path("proxy_check_plan"), help="result file ('': none)")
    args = parser.parse_args()
    run = results_io.start()
    sys.path.insert(0, ROOT)
    from experiments.registry import get_experiment

    config = get_experiment(EXPERIMENT)
    training = results_io.load(TRAINING_RESULT)
    sources = step_time_sources(training, config.trainer.batch_size)
    if not sources:
        print(f"bench/results/{TRAINING_RESULT}.json holds no trainer rate: run python bench/bench_training.py")
        return 1
    projections = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            command, plan = dry_run(source["step_seconds"], os.path.join(tmp, "check"))
            evals = evaluation_hours(plan, config.data.holdout_size, source["eval_images_per_s"])
            projections.append({**source, "command": command, "plan": plan, "evaluation": evals})
            print(
                f"{source['device']}: {' '.join(command)}\n  {plan['trials']} trials, {plan['total_steps']:,} steps x "
                f"{plan['step_seconds']:.4g} s = {plan['projected_trial_hours']:,.1f} trial-hours of training, plus "
                f"{sum(e['hours'] for e in evals.values()):,.1f} hours of evaluation"
            )
    training_header = {k: training[k] for k in ("command", "commit", "date", "cpu_count", "cpu_model",
                                                 "load_average_start", "load_average_end", "gpus")}  # fmt: skip
    figures = {
        "seeds": [SAMPLE_SEED],
        "experiment": EXPERIMENT,
        "archs": ARCHS,
        "check_seeds": SEEDS,
        "batch_size": config.trainer.batch_size,
        "eval_images": config.data.holdout_size,
        "step_time_from": {"file": f"bench/results/{TRAINING_RESULT}.json", **training_header},
        "projections": projections,
    }
    if args.output:
        print(f"wrote {results_io.write(args.output, run, figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

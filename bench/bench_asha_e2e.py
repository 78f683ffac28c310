"""Multi-fidelity against full fidelity end to end: real synthetic_smoke searches through ``nas-search``.

Two searches, each as a user runs it (``nas-search search`` on a local Ray, real proxy trainings, real
pycocotools AP), each with its own controller seed:

- ``full``: ``synthetic_smoke`` as it is (``--full_trials`` proposals, every one trained 10 epochs);
- ``asha``: the same with ``search.fidelity=asha`` (its default rungs, recorded) and ``--asha_trials``
  proposals, about the same training budget.

Then the best architecture of each (the highest AP among the trials trained to the end) is trained
again from scratch with ``--retrain_seeds`` new seeds (``nas-search train``), so the comparison of
what each search found does not rest on the one lucky seed that made it the best. Reported: proposals,
epochs trained (and what a full-fidelity search of the same proposals would train), trial-seconds,
wall time, the best architecture's AP in its search and retrained (mean over seeds).

One pair of searches on a 2-core CPU: a demonstration that the whole path works and what it costs,
not a statistic (``bench/bench_asha.py`` gives the statistic on a stand-in). Resumable: rerun the
same command after an interruption and each search continues where it stopped.

Usage (about 20-40 minutes on 2 cores)::

    python bench/bench_asha_e2e.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import results_io  # noqa: E402

EXPERIMENT = "synthetic_smoke"
SEEDS = {"full": 2000, "asha": 3000}  # each search's own controller seed
RETRAIN_SEEDS = (4000, 4001, 4002)  # new seeds for the best architectures, used by neither search


def _cli(*args: str, capture: bool = False) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "nas.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"nas-search {' '.join(args)} exited {proc.returncode}")
    return proc.stdout or ""


def search(name: str, workdir: str, trials: int, overrides: str) -> dict:
    """Runs (or continues) one search and reads its trial log."""
    override = f"search.seed={SEEDS[name]},search.max_trials={trials}" + (f",{overrides}" if overrides else "")
    start, load_start = time.time(), os.getloadavg()[0]
    _cli("search", f"--experiment={EXPERIMENT}", f"--workdir={workdir}", f"--params_override={override}", "--quiet")
    wall = time.time() - start
    from nas.fidelity import RungPlan, epochs_spent
    from nas.report_data import device_hours
    from nas.trial_store import TrialStore
    from nas.workdir import Workdir

    wd = Workdir(workdir)
    config = wd.config()
    plan = RungPlan.of(config)
    epochs_full = float(config.trainer.epochs)
    with TrialStore(wd.log_path, readonly=True) as store:
        trials_ = list(store.trials.values())
        seconds = device_hours(store, 1.0) * 3600.0  # every run of a trial, up to its rung or outcome
    trained = [t for t in trials_ if t.reused_from is None and t.status == "completed"]
    epochs = sum(epochs_spent(t, plan) if plan else epochs_full for t in trained)
    finals = [t for t in trials_ if t.status == "completed" and t.full_fidelity and t.metrics]
    best = max(finals, key=lambda t: (t.metrics["AP"], -t.trial_id))
    stopped = sum(1 for t in trials_ if t.fidelity and t.fidelity.get("decision") == "stopped")
    return {
        "search": name,
        "command": f"nas-search search --experiment={EXPERIMENT} --workdir=W --params_override={override}",
        "controller_seed": SEEDS[name],
        "rungs": list(plan.epochs) if plan else [epochs_full],
        "proposals": len(trials_),
        "trained": len(trained),
        "trained_to_end": len(finals),
        "stopped": stopped,
        "failed": sum(1 for t in trials_ if t.status == "failed"),
        "epochs": epochs,
        "epochs_full_same_proposals": epochs_full * len(trained),
        "trial_seconds": round(seconds, 1),
        "wall_s_this_run": round(wall, 1),
        "load_1min_start": load_start,
        "best_trial": best.trial_id,
        "best_fingerprint": best.fingerprint,
        "best_ap": best.metrics["AP"],
        "best_architecture": best.architecture,
    }


def retrain(name: str, result: dict, root: str, seeds: tuple[int, ...]) -> list[float]:
    """The best architecture trained again from scratch with new seeds: its AP per seed."""
    arch_file = os.path.join(root, f"{name}_best.json")
    with open(arch_file, "w") as f:
        json.dump(result["best_architecture"], f)
    aps = []
    for seed in seeds:
        workdir = os.path.join(root, f"{name}_best_seed{seed}")
        metrics = os.path.join(workdir, "metrics.json")
        if not os.path.exists(metrics):  # resumable: a finished retraining is not run again
            _cli("train", f"--arch={arch_file}", f"--experiment={EXPERIMENT}", f"--workdir={workdir}",
                 f"--seed={seed}", "--quiet", capture=True)  # fmt: skip
        with open(metrics) as f:
            aps.append(float(json.load(f)["metrics"]["AP"]))
    return aps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir_root", default=os.path.join(ROOT, "workdirs", "asha_e2e"))
    parser.add_argument("--full_trials", type=int, default=36, help="proposals of the full-fidelity search")
    parser.add_argument("--asha_trials", type=int, default=100, help="proposals of the ASHA search")
    parser.add_argument("--retrain_seeds", type=int, default=3, help="new seeds for each best architecture")
    parser.add_argument("--output", default=results_io.path("asha_e2e"), help="result file ('': none)")
    args = parser.parse_args(argv)
    if not 0 <= args.retrain_seeds <= len(RETRAIN_SEEDS):
        parser.error(f"--retrain_seeds: 0 to {len(RETRAIN_SEEDS)}")
    run = results_io.start(None if argv is None else [sys.argv[0], *argv])
    os.makedirs(args.workdir_root, exist_ok=True)
    searches = {
        "full": search("full", os.path.join(args.workdir_root, "full"), args.full_trials, ""),
        "asha": search("asha", os.path.join(args.workdir_root, "asha"), args.asha_trials, "search.fidelity=asha"),
    }
    seeds = RETRAIN_SEEDS[: args.retrain_seeds]
    for name, result in searches.items():
        result["retrained_ap"] = retrain(name, result, args.workdir_root, seeds)
        result["retrained_ap_mean"] = sum(result["retrained_ap"]) / len(seeds) if seeds else None
        print(
            f"{name}: {result['proposals']} proposals, {result['epochs']:g} epochs "
            f"({result['epochs_full_same_proposals']:g} at full fidelity), {result['trial_seconds']:.0f} trial-s; "
            f"best trial {result['best_trial']} AP {result['best_ap']:.3f}, retrained {result['retrained_ap']}"
        )
    if args.output:
        figures = {
            "experiment": EXPERIMENT,
            "seeds": {"controller": SEEDS, "retrain": list(seeds)},
            "searches": searches,
        }
        print(f"wrote {results_io.write(args.output, run, figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

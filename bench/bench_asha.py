"""Multi-fidelity search (``search.fidelity=asha``) against full fidelity, on a stand-in for synthetic_smoke.

The stand-in. Every trial's learning curve is a logistic in the epoch of the whole schedule (10 epochs,
synthetic_smoke's), ``AP(e) = a / (1 + exp(-(e - t0) / w))``, observed with Gaussian noise. Its law is
fitted by ``python bench/bench_asha_fit.py`` (stored in ``bench/results/asha_fit.json``, read here) to the
learning curves that the synthetic_smoke proxy check measured (12 architectures x 3 seeds, per-epoch AP of
10-epoch runs, ``workdirs/proxy_check_synthetic``, written by ``python bench/bench_proxy_check.py``):
``logit a`` normal, ``(t0, log w)`` bivariate normal; the noise's standard deviation ``c * AP**p`` (it
grows with the AP) plus a floor per epoch, chosen so that each epoch's AP ranks architectures no better
than the measured curves did (rank correlation with the last epoch: about 0.5 after one epoch, 0.3 after
two and three, 0.5 after four, 0.76 after five, 0.9 from seven). Curves cross as the measured ones do:
little is learned before epoch 5, the onset t0 varies by about an epoch either way, and about a third of
random architectures end below AP 0.05. The law has no ceiling but AP's own (1): it extrapolates beyond
the measured asymptotes (0.01 to 0.4; the fit puts about 1 random architecture in 100 above 0.55). An
architecture fixes its curve: logit a = mean + sd * (0.6 * z + 0.8 * h), with z a standardised
architectural score the controller can learn (the fraction of blocks that are bottlenecks at levels 3-5)
and h, t0 and w drawn from the architecture's fingerprint; a trial's noise is drawn from the fingerprint,
the seed and the epoch.

The searches run the real search loop (``nas.search_loop``: REINFORCE with synthetic_smoke's controller
settings, the trial log, ASHA's decisions and rewards) on a simulated cluster of ``--workers`` workers
with a simulated clock (3 s per epoch, times a per-architecture factor in [0.7, 1.3], so results arrive
out of order; each evaluation at a rung adds 1.5 s), each in its own temporary workdir.

For each seed: ``full`` runs ``--proposals`` trials to 10 epochs; each ASHA variant runs until it has
spent the same number of epochs (so it sees more architectures). Reported per variant: epochs and
trial-seconds against a full-fidelity search of the same proposals (cost), and the noise-free 10-epoch
AP of the best architecture found (the highest observed 10-epoch AP among the trials trained to the
end) against ``full``'s (quality), with the fraction of 20,000 random architectures that beat it.

Seeds. Every variant draws its own controller seeds (``variant_seed``). The defaults were chosen on
``TUNING_SEEDS`` (``--seed_set tuning``, stored as ``asha_tuning.json``); the figures reported come from
``REPORT_SEEDS``, which choosing them never saw (``asha.json``).

Usage (a few minutes on 2 cores)::

    python bench/bench_asha.py                      # report seeds -> bench/results/asha.json
    python bench/bench_asha.py --seed_set tuning    # tuning seeds -> bench/results/asha_tuning.json
    python bench/bench_asha.py --num_seeds 40 --variants asha_1_5_10 --name asha_40   # more seeds, one variant
    python bench/bench_asha.py --num_seeds 20 --variants asha_1_5_10 --crossing 0 --name asha_crossing_0
    python bench/bench_asha.py --num_seeds 20 --proposals 300 --variants asha_1_5_10 \\
        --controller_from spinenet49_coco_proxy --name asha_coco_controller
    python bench/bench_asha.py --num_seeds 40 --variants asha_1_5_10 --set controller.algorithm=random \\
        --name asha_random_search
    python bench/bench_asha.py --num_seeds 40 --first_seed 1040 --variants asha_1_5_10_skip --name asha_skip_40
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import results_io  # noqa: E402

EPOCHS = 10.0
SECONDS_PER_EPOCH = 3.0
SECONDS_PER_EVALUATION = 1.5  # an AP evaluation at each rung (64 held-out images), counted in trial-seconds
LEARNABLE = 0.6  # the share of logit a's standard deviation that the architectural score explains
SPACE_SAMPLE = 20_000  # random architectures against which the best found is ranked
VARIANTS = {
    "asha_2_4_10": {"search.rungs": (2.0, 4.0, 10.0)},
    "asha_4_6_10": {"search.rungs": (4.0, 6.0, 10.0)},
    "asha_2_4_10_raw": {"search.rungs": (2.0, 4.0, 10.0), "reward.low_fidelity": "raw"},
    "asha_2_4_10_skip": {"search.rungs": (2.0, 4.0, 10.0), "reward.low_fidelity": "skip"},
    "asha_1_5_10": {"search.rungs": (1.0, 5.0, 10.0)},
    "asha_1_6_10": {"search.rungs": (1.0, 6.0, 10.0)},
    "asha_2_5_10": {"search.rungs": (2.0, 5.0, 10.0)},
    "asha_1_6_10_eta4": {"search.rungs": (1.0, 6.0, 10.0), "search.reduction_factor": 4.0},
    "asha_1_5_10_skip": {"search.rungs": (1.0, 5.0, 10.0), "reward.low_fidelity": "skip"},
    "asha_1_5_10_raw": {"search.rungs": (1.0, 5.0, 10.0), "reward.low_fidelity": "raw"},
    "asha_1_5_10_lr_half": {"search.rungs": (1.0, 5.0, 10.0), "controller.policy_gradient.learning_rate": 0.025},
    "asha_2_4_10_lr_half": {"search.rungs": (2.0, 4.0, 10.0), "controller.policy_gradient.learning_rate": 0.025},
    # A larger entropy bonus (synthetic_smoke's is 1e-4): whether it keeps the controller from converging
    # onto one architecture early, which ASHA's threefold proposals make more frequent.
    "asha_1_5_10_entropy_3e-3": {"search.rungs": (1.0, 5.0, 10.0), "controller.policy_gradient.entropy_weight": 3e-3},
    "asha_1_5_10_entropy_1e-2": {"search.rungs": (1.0, 5.0, 10.0), "controller.policy_gradient.entropy_weight": 1e-2},
    # Full fidelity with the halved learning rate: whether the rate helps ASHA or any search.
    "full_lr_half": {"search.fidelity": "full", "controller.policy_gradient.learning_rate": 0.025},
}


_FIT: dict = {}


def load_fit() -> dict:
    """The stand-in's law, fitted by ``python bench/bench_asha_fit.py`` (``bench/results/asha_fit.json``)."""
    if not _FIT:
        _FIT.update(results_io.load("asha_fit")["fit"])
    return _FIT


def with_crossing(fit: dict, scale: float) -> dict:
    """The fit with its curves crossing ``scale`` times as much: the spread of onsets and widths between
    architectures and the per-epoch noise floor scaled (1: as measured; 0: every architecture has the same
    onset and width, so early epochs rank nearly as the last does). A what-if, never a default."""
    out = dict(fit)
    out["t0"] = [fit["t0"][0], fit["t0"][1] * scale]
    out["log_w"] = [fit["log_w"][0], fit["log_w"][1] * scale]
    out["noise_floor_by_epoch"] = [x * scale for x in fit.get("noise_floor_by_epoch") or []]
    return out


def set_crossing(scale: float) -> None:
    """Use ``with_crossing(fit, scale)`` for the stand-in here and in the evaluator's module."""
    fit = with_crossing(results_io.load("asha_fit")["fit"], scale)
    for module in {sys.modules[__name__], sys.modules.get("bench_asha")} - {None}:
        module._FIT.clear()
        module._FIT.update(fit)


def standin_rho_by_epoch(replicates: int = 200) -> list[float]:
    """The stand-in's rank correlation of each epoch's AP with the last epoch's, as ``bench_asha_fit``
    measures it (seed-mean AP of as many architectures and seeds as the proxy check had)."""
    import bench_asha_fit

    fit = load_fit()
    draws = bench_asha_fit.StandinDraws(fit, replicates, fit["architectures"], 3)
    floors = np.array(fit.get("noise_floor_by_epoch") or [0.0] * int(EPOCHS))
    return draws.statistics(floors)["rho_by_epoch"]


def _uniforms(*parts, n=4):
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()
    return [(int.from_bytes(digest[4 * i : 4 * i + 4], "big") + 0.5) / 2**32 for i in range(n)]


def _gauss(u):
    from statistics import NormalDist

    return NormalDist().inv_cdf(u)


def score(architecture):
    blocks = architecture["blocks"]
    return sum(1 for b in blocks if b["level"] in (3, 4, 5) and b["block_fn"] == "bottleneck") / len(blocks)


def random_architectures(n, seed):
    """``n`` architectures (as dicts) of the SpineNet-49 space drawn by the random controller."""
    from controller import build_controller
    from controller.config import ControllerConfig
    from search_space import DecisionEncoding, SearchSpace, architecture_to_dict

    encoding = DecisionEncoding(SearchSpace(parent_window=5))
    ctrl = build_controller(ControllerConfig(algorithm="random"), encoding, seed=seed)
    out = []
    for _ in range(n):
        p = ctrl.propose()
        out.append(architecture_to_dict(p.architecture))
        ctrl.feedback(p, 0.0)
    return out


# The score of random architectures of the SpineNet-49 space (mean, sd), measured once by _score_law.
SCORE_LAW = {"mean": None, "sd": None}


def _score_law():
    if SCORE_LAW["mean"] is None:
        values = [score(a) for a in random_architectures(400, seed=123)]
        SCORE_LAW.update(mean=float(np.mean(values)), sd=float(np.std(values)))
    return SCORE_LAW


def curve(architecture, fit=None):
    """(a, t0, w) of an architecture: logit a normal (part of it the learnable score), (t0, log w) correlated."""
    fit = fit or load_fit()
    law = _score_law()
    z = (score(architecture) - law["mean"]) / law["sd"]
    key = json.dumps(architecture["blocks"], sort_keys=True)
    u = _uniforms("curve", key)
    h, g1, g2 = _gauss(u[0]), _gauss(u[1]), _gauss(u[2])
    logit_a = fit["logit_a"][0] + fit["logit_a"][1] * (LEARNABLE * z + math.sqrt(1 - LEARNABLE**2) * h)
    rho = fit["corr_t0_log_w"]
    t0 = fit["t0"][0] + fit["t0"][1] * g1
    log_w = fit["log_w"][0] + fit["log_w"][1] * (rho * g1 + math.sqrt(1 - rho**2) * g2)
    return 1 / (1 + math.exp(-logit_a)), t0, math.exp(log_w)


def true_ap(architecture, epochs=EPOCHS, fit=None):
    a, t0, w = curve(architecture, fit)
    return a / (1 + math.exp(-(epochs - t0) / w))


def standin_ap(architecture, seed, epochs=EPOCHS, fit=None):
    """The curve at ``epochs`` plus noise (sd ``c * AP**p`` plus the epoch's floor) fixed by architecture,
    seed and epoch."""
    fit = fit or load_fit()
    level = true_ap(architecture, epochs, fit)
    key = json.dumps(architecture["blocks"], sort_keys=True)
    sd = fit["noise_c"] * level ** fit["noise_p"] + noise_floor(epochs, fit)
    return max(0.0, level + sd * _gauss(_uniforms("noise", key, seed, float(epochs))[0]))


def noise_floor(epochs, fit=None):
    """The noise floor at ``epochs`` (AP), chosen per epoch so that the stand-in's curves cross as the
    measured ones do (``bench_asha_fit``; 0 where the fitted noise alone ranks no better than measured)."""
    floors = (fit or load_fit()).get("noise_floor_by_epoch")
    if not floors:
        return 0.0
    return float(np.interp(epochs, np.arange(1, len(floors) + 1), floors))


def standin(architecture, seed, trial_dir, epochs=EPOCHS):
    """The stand-in evaluator (``search.evaluator=bench_asha:standin``)."""
    return {"AP": standin_ap(architecture, seed, epochs)}


_SPACE = []


def space_fraction(ap):
    """The fraction of random architectures whose noise-free 10-epoch AP is above ``ap`` (lower is better)."""
    if not _SPACE:
        _SPACE.append(np.sort([true_ap(a) for a in random_architectures(SPACE_SAMPLE, seed=77)]))
    space = _SPACE[0]
    return float(1.0 - np.searchsorted(space, ap, side="right") / len(space))


class SimulatedCluster:
    """``workers`` slots and a simulated clock; an attempt takes the epochs it trains times 3 s (x its speed)."""

    def __init__(self, workers, budget=None):
        self.capacity, self.budget = workers, budget
        self.now, self.heap, self.trained = 0.0, [], {}
        self.epochs, self.trial_seconds, self.loop = 0.0, 0.0, None

    @property
    def running(self):
        return len(self.heap)

    def submit(self, task):
        done = self.trained.get(task.trial_id, 0.0)
        target = task.epochs if task.epochs is not None else EPOCHS
        speed = 0.7 + 0.6 * _uniforms("speed", json.dumps(task.architecture["blocks"]))[0]
        seconds = (target - done) * SECONDS_PER_EPOCH * speed + SECONDS_PER_EVALUATION
        self.trained[task.trial_id] = target
        self.epochs += target - done
        self.trial_seconds += seconds
        self.heap.append((self.now + seconds, task.trial_id, task))
        self.heap.sort(key=lambda x: (x[0], x[1]))

    def wait(self, timeout):
        from nas.executors import Outcome

        if not self.heap:
            return []
        at, _, task = self.heap.pop(0)
        self.now = at
        metrics = standin(task.architecture, task.seed, task.trial_dir, task.epochs or EPOCHS)
        if self.budget is not None and self.epochs >= self.budget:
            self.loop.request_stop()  # the budget is spent: propose no more
        return [Outcome(task, result={"metrics": metrics, "worker": "sim", "timings": {}})]

    def shutdown(self):
        pass


def run_search(variant, overrides, seed, proposals, workers, budget=None, controller_from=None, common=None):
    from experiments.overrides import apply_overrides, config_to_dict
    from experiments.registry import get_experiment
    from nas.search_runner import open_search

    base = {
        "search.executor": "local",
        "search.evaluator": "bench_asha:standin",
        "search.max_trials": proposals,
        "search.seed": seed,
        "search.report_every": 0,
        "search.snapshot_every": 1000,
    }
    if variant != "full":
        base["search.fidelity"] = "asha"
    experiment = get_experiment("synthetic_smoke")
    if controller_from:  # another experiment's controller (e.g. the COCO search's, set for 1,000 trials)
        experiment = dataclasses.replace(experiment, controller=get_experiment(controller_from).controller)
    config = apply_overrides(experiment, {**base, **(common or {}), **overrides})
    cluster = SimulatedCluster(workers, budget)
    with tempfile.TemporaryDirectory() as tmp, open_search(config, os.path.join(tmp, "s")) as search:
        search.workdir.create(config_to_dict(config))
        search.loop.attach(executor=cluster)
        cluster.loop = search.loop
        search.loop.run(proposals)
        trials = list(search.store.trials.values())
    finals = [t for t in trials if t.status == "completed" and t.full_fidelity and t.metrics]
    best = max(finals, key=lambda t: (t.metrics["AP"], -t.trial_id))
    stopped = sum(1 for t in trials if t.fidelity and t.fidelity.get("decision") == "stopped")
    # A proposal of an architecture already trained reuses its result (no training, under either fidelity):
    # the full-fidelity search of the same proposals trains the others to the end.
    trained = sum(1 for t in trials if t.reused_from is None)
    return {
        "variant": variant,
        "seed": seed,
        "proposals": len(trials),
        "reused": len(trials) - trained,
        "trained_to_end": sum(1 for t in finals if t.reused_from is None),
        "stopped": stopped,
        "epochs": cluster.epochs,
        "epochs_full_same_proposals": EPOCHS * trained,
        "trial_seconds": cluster.trial_seconds,
        "best_trial": best.trial_id,
        "best_true_ap": true_ap(best.architecture),
        "best_space_fraction": space_fraction(true_ap(best.architecture)),
        "best_observed_ap": best.metrics["AP"],
    }


TUNING_SEEDS = tuple(range(8))  # chose the defaults (rungs 1/10, 1/2, 1 of the schedule; calibrated)
REPORT_SEEDS = tuple(range(1000, 1010))  # the figures reported, never used to choose anything
REPORT_SEED_POOL = 1000  # --num_seeds N reports on 1000 .. 1000 + N - 1 (the first 10 are REPORT_SEEDS)


def variant_seed(variant_index: int, seed: int) -> int:
    """Each variant draws its own controller seed (``full`` is variant 0): no two share a draw."""
    return seed + 100_000 * variant_index


def _is_full(variant: str) -> bool:
    return variant == "full" or VARIANTS[variant].get("search.fidelity") == "full"


def default_variant() -> str:
    """The variant whose settings are synthetic_smoke's defaults with ``search.fidelity=asha``."""
    from experiments.overrides import apply_overrides
    from experiments.registry import get_experiment

    config = apply_overrides(get_experiment("synthetic_smoke"), {"search.fidelity": "asha"})
    default = {
        "search.rungs": config.fidelity_rungs(),
        "reward.low_fidelity": config.reward.low_fidelity,
        "search.reduction_factor": config.search.reduction_factor,
        "controller.policy_gradient.learning_rate": config.controller.policy_gradient.learning_rate,
    }
    for name, overrides in VARIANTS.items():
        if {**default, **overrides} == default:
            return name
    raise SystemExit(f"no variant has synthetic_smoke's default ASHA settings {default}: add one to VARIANTS")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed_set", choices=("report", "tuning"), default="report")
    parser.add_argument("--proposals", type=int, default=36, help="trials of the full-fidelity search")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--name", default=None, help="result name (default: asha, or asha_tuning)")
    parser.add_argument(
        "--num_seeds",
        type=int,
        default=None,
        help="report seeds 1000 .. 1000 + N - 1 instead of the 10 REPORT_SEEDS (more seeds, more power)",
    )
    parser.add_argument(
        "--first_seed",
        type=int,
        default=REPORT_SEED_POOL,
        help="with --num_seeds: the first report seed (>= 1000; a later one gives seeds no earlier run used)",
    )
    parser.add_argument(
        "--controller_from",
        default=None,
        help="the controller settings of this experiment (default synthetic_smoke's, set for 36 trials), "
        "e.g. spinenet49_coco_proxy for a search of hundreds of proposals",
    )
    parser.add_argument(
        "--crossing",
        type=float,
        default=1.0,
        help="what-if: learning curves crossing this many times as much as measured (0: early epochs rank well)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an experiment override for every search, full included (e.g. controller.algorithm=random)",
    )
    args = parser.parse_args(argv)
    common = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set takes KEY=VALUE, got {item!r}")
        common[key] = value
    name = args.name or ("asha" if args.seed_set == "report" else "asha_tuning")
    base_seeds = REPORT_SEEDS if args.seed_set == "report" else TUNING_SEEDS
    if args.num_seeds is not None:
        if args.seed_set != "report" or args.num_seeds < 1 or args.first_seed < REPORT_SEED_POOL:
            parser.error("--num_seeds takes a positive count and only the report seeds (--first_seed >= 1000)")
        base_seeds = tuple(range(args.first_seed, args.first_seed + args.num_seeds))
    variants = args.variants.split(",")
    if args.crossing < 0:
        parser.error("--crossing must be >= 0")
    run = results_io.start()
    set_crossing(args.crossing)
    rho_by_epoch = standin_rho_by_epoch() if args.crossing != 1.0 else None
    random.seed(0)
    runs = []
    for index, base in enumerate(base_seeds):
        full = run_search(
            "full",
            {},
            variant_seed(0, base),
            args.proposals,
            args.workers,
            controller_from=args.controller_from,
            common=common,
        )
        runs.append({**full, "seed_index": index})
        print(json.dumps(runs[-1]), flush=True)
        for k, variant in enumerate(variants, start=1):
            r = run_search(
                variant,
                VARIANTS[variant],
                variant_seed(k, base),
                50 * args.proposals,
                args.workers,
                budget=full["epochs"],
                controller_from=args.controller_from,
                common=common,
            )
            runs.append({**r, "seed_index": index})
            print(json.dumps(runs[-1]), flush=True)
    fulls = {r["seed_index"]: r for r in runs if r["variant"] == "full"}
    summary = {}
    for variant in ["full", *variants]:
        rs = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "rungs": list(VARIANTS.get(variant, {}).get("search.rungs", (EPOCHS,))),
            "low_fidelity": None if _is_full(variant) else VARIANTS[variant].get("reward.low_fidelity", "calibrated"),
            "reduction_factor": VARIANTS.get(variant, {}).get("search.reduction_factor", 3.0),
            "proposals_median": float(np.median([r["proposals"] for r in rs])),
            "trained_proposals_median": float(np.median([r["proposals"] - r["reused"] for r in rs])),
            "epochs_median": float(np.median([r["epochs"] for r in rs])),
            "cost_ratio_median": float(np.median([r["epochs_full_same_proposals"] / r["epochs"] for r in rs])),
            "best_true_ap_median": float(np.median([r["best_true_ap"] for r in rs])),
            "best_space_fraction_median": float(np.median([r["best_space_fraction"] for r in rs])),
            "wins_against_full": sum(1 for r in rs if r["best_true_ap"] > fulls[r["seed_index"]]["best_true_ap"]),
            "ties_with_full": sum(1 for r in rs if r["best_true_ap"] == fulls[r["seed_index"]]["best_true_ap"]),
            "seeds": len(rs),
        }  # fmt: skip
    for variant, s in summary.items():
        print(variant, json.dumps(s))
    results_io.write(
        name,
        run,
        {
            "fit": {k: v for k, v in load_fit().items() if k != "fitted"},
            "crossing": args.crossing,
            "controller_from": args.controller_from or "synthetic_smoke",
            "overrides": common,
            "standin_rho_by_epoch": rho_by_epoch,
            "learnable": LEARNABLE,
            "space_sample": SPACE_SAMPLE,
            "score_law": _score_law(),
            "epochs": EPOCHS,
            "workers": args.workers,
            "proposals_full": args.proposals,
            "default": default_variant(),
            "seed_set": args.seed_set,
            "seeds": list(base_seeds),
            "variant_seeds": {v: [variant_seed(k, b) for b in base_seeds] for k, v in enumerate(["full", *variants])},
            "summary": summary,
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

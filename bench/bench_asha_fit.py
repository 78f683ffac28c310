"""Fits bench_asha's stand-in evaluator to the learning curves the synthetic_smoke proxy check measured.

Input: the per-epoch AP of every trial of ``python bench/bench_proxy_check.py`` (its workdir,
``workdirs/proxy_check_synthetic``: 12 architectures x 3 seeds, 10-epoch runs with
``trainer.eval_every_epoch``, ``trials/*/epoch_ap.json``). Output: ``bench/results/asha_fit.json``, which
``bench/bench_asha.py`` reads, holding

- the law of a learning curve. Each architecture's seed-mean curve is fitted (scipy's ``curve_fit``) by a
  logistic in the epoch, ``AP(e) = a / (1 + exp(-(e - t0) / w))``; across architectures ``logit a`` is
  normal (AP is below 1 whatever the architecture; the 12 fitted asymptotes lie between 0.01 and 0.4) and
  ``(t0, log w)`` bivariate normal with their fitted correlation (``logit a``'s with either is small);
- the noise between seeds. Its standard deviation grows with the AP, ``sd = c * AP**p``, fitted on the
  (mean, standard deviation) over seeds of every architecture and epoch with a mean above 0.001 (a
  straight line in log-log); a constant would drown the first epochs' small but ordered APs;
- how the curves cross: the rank correlation (Spearman) of each epoch's seed-mean AP with the last
  epoch's, measured, and the same statistic of the stand-in (12 random architectures x 3 seeds, averaged
  over ``--replicates`` draws), side by side; the fraction of architectures ending below AP 0.05.

Usage::

    python bench/bench_proxy_check.py    # once, if its workdir is gone (about an hour on 2 cores)
    python bench/bench_asha_fit.py       # seconds -> bench/results/asha_fit.json
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import results_io  # noqa: E402

EPOCHS = 10


def load_curves(workdir: str, seeds: set | None = None) -> dict[str, list[list[float]]]:
    """``{architecture fingerprint: [per-epoch AP of each seed]}`` of the proxy check's complete trials
    (their training seeds added to ``seeds``)."""
    paths = sorted(glob.glob(os.path.join(workdir, "trials", "*", "epoch_ap.json")))
    if not paths:
        raise SystemExit(
            f"no learning curves under {workdir}/trials/*/epoch_ap.json: run `python bench/bench_proxy_check.py` "
            "first (it writes them), or pass --workdir"
        )
    curves: dict[str, list[list[float]]] = collections.defaultdict(list)
    for path in paths:
        with open(os.path.join(os.path.dirname(path), "trial.json")) as f:
            trial = json.load(f)
        with open(path) as f:
            epochs = json.load(f)["epochs"]
        if len(epochs) == EPOCHS:  # the reference (40-epoch) trials record no per-epoch curve of this length
            curves[trial["fingerprint"]].append([float(e["AP"]) for e in epochs])
            if seeds is not None:
                seeds.add(trial["seed"])
    return dict(curves)


def _logistic(e, logit_a, t0, log_w):
    return 1.0 / (1.0 + np.exp(-logit_a)) / (1.0 + np.exp(-(e - t0) / np.exp(log_w)))


def fit(curves: dict[str, list[list[float]]]) -> dict:
    from scipy.optimize import curve_fit
    from scipy.stats import linregress

    e = np.arange(1, EPOCHS + 1, dtype=float)
    params, levels = [], []
    for runs in curves.values():
        mean = np.mean(runs, axis=0)
        a0 = min(max(mean[-1], 1e-3), 0.9)
        p, _ = curve_fit(_logistic, e, mean, p0=(math.log(a0 / (1 - a0)) + 0.5, 8.0, 0.0), maxfev=20000)
        params.append(p)
        levels += [(m, s) for m, s in zip(mean, np.std(runs, axis=0, ddof=1)) if m > 1e-3 and s > 0]
    params = np.array(params)
    line = linregress(np.log([m for m, _ in levels]), np.log([s for _, s in levels]))
    return {
        "logit_a": [float(params[:, 0].mean()), float(params[:, 0].std(ddof=1))],
        "t0": [float(params[:, 1].mean()), float(params[:, 1].std(ddof=1))],
        "log_w": [float(params[:, 2].mean()), float(params[:, 2].std(ddof=1))],
        "corr_t0_log_w": float(np.corrcoef(params[:, 1], params[:, 2])[0, 1]),
        "corr_logit_a_t0": float(np.corrcoef(params[:, 0], params[:, 1])[0, 1]),
        "corr_logit_a_log_w": float(np.corrcoef(params[:, 0], params[:, 2])[0, 1]),
        "noise_c": float(math.exp(line.intercept)),
        "noise_p": float(line.slope),
        "noise_points": len(levels),
        "noise_r": float(line.rvalue),
        "architectures": len(curves),
        "curves": sum(len(r) for r in curves.values()),
        "fitted": {k: [float(x) for x in p] for k, p in zip(curves, params)},
    }


def rank_by_epoch(mean_curves: np.ndarray) -> list[float]:
    """Spearman's rho of each epoch's AP with the last epoch's, over architectures (rows)."""
    from scipy.stats import spearmanr

    return [float(spearmanr(mean_curves[:, k], mean_curves[:, -1])[0]) for k in range(mean_curves.shape[1])]


class StandinDraws:
    """Noise-free curves and unit noise of ``replicates`` groups of ``archs`` random architectures x ``seeds``,
    drawn once (the same draws for every noise scale tried: the statistics are then monotone in it)."""

    def __init__(self, the_fit: dict, replicates: int, archs: int, seeds: int):
        import bench_asha

        sample = bench_asha.random_architectures(archs * replicates, seed=2024)
        epochs = np.arange(1, EPOCHS + 1, dtype=float)
        levels = np.array([[bench_asha.true_ap(a, float(e), the_fit) for e in epochs] for a in sample])
        unit = np.array(
            [
                [[bench_asha._gauss(bench_asha._uniforms("noise", json.dumps(a["blocks"], sort_keys=True), s, float(e))[0])
                  for e in epochs] for s in range(seeds)]
                for a in sample
            ]
        )  # fmt: skip
        self.levels = levels.reshape(replicates, archs, EPOCHS)
        self.unit = unit.reshape(replicates, archs, seeds, EPOCHS)
        self.sd = the_fit["noise_c"] * self.levels ** the_fit["noise_p"]

    def means(self, floors: np.ndarray) -> np.ndarray:
        """Seed-mean AP, ``[replicate, architecture, epoch]``, with a noise floor per epoch."""
        ap = self.levels[:, :, None, :] + (self.sd + floors)[:, :, None, :] * self.unit
        return np.maximum(ap, 0.0).mean(axis=2)

    def statistics(self, floors: np.ndarray) -> dict:
        means = self.means(floors)
        rhos = np.array([rank_by_epoch(m) for m in means])
        return {
            "rho_by_epoch": [float(x) for x in np.nanmean(rhos, axis=0)],
            "below_0_05": float(np.mean(means[:, :, -1] < 0.05)),
        }


def noise_floors(draws: StandinDraws, measured_rho: list[float]) -> list[float]:
    """Per epoch (the last excepted), the least noise floor (AP, added to ``c * AP**p``) at which the
    stand-in's mean rank correlation with the last epoch is no higher than the measured one (bisection in
    log scale between 1e-6 and 1 AP); 0 where the fitted noise alone ranks no better than measured."""
    floors = np.zeros(EPOCHS)
    for k in range(EPOCHS - 1):

        def rho(floor, k=k):  # k bound now: each epoch bisects its own floor
            trial = floors.copy()
            trial[k] = floor
            means = draws.means(trial)
            return float(np.nanmean([rank_by_epoch(m[:, [k, -1]])[0] for m in means]))

        if rho(0.0) <= measured_rho[k]:
            continue
        lo, hi = math.log(1e-6), 0.0
        for _ in range(30):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if rho(math.exp(mid)) > measured_rho[k] else (lo, mid)
        floors[k] = math.exp(hi)
    return [float(x) for x in floors]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=os.path.join(results_io.ROOT, "workdirs", "proxy_check_synthetic"))
    parser.add_argument("--replicates", type=int, default=200)
    args = parser.parse_args(argv)
    trial_seeds: set = set()
    curves = load_curves(args.workdir, trial_seeds)
    run = results_io.start()
    the_fit = fit(curves)
    means = np.array([np.mean(r, axis=0) for r in curves.values()])
    measured = {"rho_by_epoch": rank_by_epoch(means), "below_0_05": float(np.mean(means[:, -1] < 0.05))}
    seeds = min(len(r) for r in curves.values())
    draws = StandinDraws(the_fit, args.replicates, len(curves), seeds)
    plain = draws.statistics(np.zeros(EPOCHS))
    the_fit["noise_floor_by_epoch"] = noise_floors(draws, measured["rho_by_epoch"])
    standin = draws.statistics(np.array(the_fit["noise_floor_by_epoch"]))
    for name, stats in (("measured", measured), ("fitted noise", plain), ("stand-in", standin)):
        print(
            f"{name:12s} rho by epoch",
            " ".join(f"{x:.2f}" for x in stats["rho_by_epoch"]),
            "below 0.05:",
            f"{stats['below_0_05']:.2f}",
        )
    print(json.dumps({k: v for k, v in the_fit.items() if k != "fitted"}))
    results_io.write(
        "asha_fit",
        run,
        {"workdir": os.path.relpath(args.workdir, results_io.ROOT), "epochs": EPOCHS, "fit": the_fit,
         "seeds": sorted(trial_seeds),
         "measured": measured, "standin_fitted_noise": plain,
         "standin": {**standin, "replicates": args.replicates, "seeds": seeds}},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

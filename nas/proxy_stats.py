"""The statistics of a proxy check: does the reward rank architectures as longer training does, and how noisy is it?

Pure NumPy and SciPy (``scipy.stats.spearmanr``, ``kendalltau``), no
TensorFlow or Ray. The unit is the architecture: an architecture's AP under a
recipe is the mean over its seeds, and the intervals come from resampling
architectures (the seeds of an architecture travel together).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.90
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def rank_correlations(x: Sequence[float], y: Sequence[float]) -> dict[str, float | None]:
    """Spearman's rho and Kendall's tau (tau-b) of paired values; None where undefined (fewer than 3, or constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"spearman": None, "kendall": None}
    return {
        "spearman": _finite(stats.spearmanr(x, y).statistic),
        "kendall": _finite(stats.kendalltau(x, y).statistic),
    }


def bootstrap_rank_correlations(
    x: Sequence[float],
    y: Sequence[float],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Spearman's rho and Kendall's tau with percentile bootstrap intervals over the pairs.

    The pairs are resampled with replacement (a seeded ``numpy`` generator);
    a resample in which either side is constant has no rank correlation and
    is left out (``resamples_used`` says how many counted).

    Returns:
      ``{"n", "confidence", "resamples_used", "spearman": {"value", "low", "high"},
      "kendall": {...}}``; values None where undefined.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    point = rank_correlations(x, y)
    out: dict[str, Any] = {"n": int(len(x)), "confidence": confidence, "resamples_used": 0}
    draws: dict[str, list[float]] = {"spearman": [], "kendall": []}
    if point["spearman"] is not None:
        rng = np.random.default_rng(seed)
        for _ in range(resamples):
            idx = rng.integers(0, len(x), len(x))
            xs, ys = x[idx], y[idx]
            if np.ptp(xs) == 0 or np.ptp(ys) == 0:
                continue
            draws["spearman"].append(stats.spearmanr(xs, ys).statistic)
            draws["kendall"].append(stats.kendalltau(xs, ys).statistic)
        out["resamples_used"] = len(draws["spearman"])
    tail = (1 - confidence) / 2 * 100
    for name in ("spearman", "kendall"):
        values = [v for v in draws[name] if math.isfinite(v)]
        low, high = np.percentile(values, [tail, 100 - tail]) if values else (None, None)
        out[name] = {"value": point[name], "low": _finite(low), "high": _finite(high)}
    return out


def top_k_overlap(x: Sequence[float], y: Sequence[float], k: int) -> float | None:
    """The share of the k best by ``x`` that are among the k best by ``y`` (ties broken by position)."""
    if k < 1 or k > len(x):
        return None
    best_x = set(np.argsort(-np.asarray(x, float), kind="stable")[:k].tolist())
    best_y = set(np.argsort(-np.asarray(y, float), kind="stable")[:k].tolist())
    return len(best_x & best_y) / k


def seed_noise(values_by_arch: Sequence[Sequence[float]]) -> dict[str, Any]:
    """How the AP varies between seeds of one architecture against how it varies between architectures.

    Args:
      values_by_arch: per architecture, its APs over seeds.

    Returns:
      ``between_var`` (variance of the architecture means, ddof 1),
      ``within_var`` (mean over architectures of the variance over seeds,
      ddof 1; only architectures with 2 or more seeds), ``seed_std`` (its
      square root: the typical difference a seed alone makes), ``snr``
      (``between_var / within_var``) and the counts; None where undefined.
    """
    means = [float(np.mean(v)) for v in values_by_arch if len(v)]
    variances = [float(np.var(v, ddof=1)) for v in values_by_arch if len(v) >= 2]
    between = float(np.var(means, ddof=1)) if len(means) >= 2 else None
    within = float(np.mean(variances)) if variances else None
    snr = between / within if between is not None and within else None
    return {
        "archs": len(means),
        "archs_with_seeds": len(variances),
        "between_var": between,
        "within_var": within,
        "seed_std": math.sqrt(within) if within is not None else None,
        "snr": snr,
    }


def summarize_check(
    per_arch: Sequence[Mapping[str, Any]], *, top_ks: Sequence[int] = (1, 3, 5), seed: int = BOOTSTRAP_SEED
) -> dict[str, Any]:
    """The figures of a proxy check from its per-architecture results.

    Args:
      per_arch: one mapping per architecture: ``proxy`` and ``reference``
        (lists of AP over seeds, maybe empty) and ``epochs`` (list over
        seeds of ``{epoch: AP}``, the proxy's per-epoch APs).
      top_ks: the k of the top-k overlaps.
      seed: the bootstrap's seed.

    Returns:
      ``correlation`` (rho and tau between the mean proxy and mean reference
      AP, with intervals), ``top_k`` overlaps, ``noise`` (``seed_noise`` of
      each recipe) and ``epochs`` (per epoch: rho of the mean AP after that
      epoch with the final proxy AP and with the reference AP). Architectures
      missing a recipe are left out of what needs both.
    """
    both = [a for a in per_arch if a["proxy"] and a["reference"]]
    proxy_means = [float(np.mean(a["proxy"])) for a in both]
    ref_means = [float(np.mean(a["reference"])) for a in both]
    correlation = bootstrap_rank_correlations(proxy_means, ref_means, seed=seed)
    top_k = {str(k): top_k_overlap(proxy_means, ref_means, k) for k in top_ks if k <= len(both)}
    noise = {
        "proxy": seed_noise([a["proxy"] for a in per_arch]),
        "reference": seed_noise([a["reference"] for a in per_arch]),
    }
    epochs_seen = sorted({int(e) for a in both for run in a.get("epochs", []) for e in run})
    by_epoch = []
    for epoch in epochs_seen:
        pairs = []
        for a, final, ref in zip(both, proxy_means, ref_means):
            values = [run[epoch] for run in a.get("epochs", []) if epoch in run]
            if values:
                pairs.append((float(np.mean(values)), final, ref))
        if not pairs:
            continue
        at_epoch, finals, refs = (list(col) for col in zip(*pairs))
        by_epoch.append(
            {
                "epoch": epoch,
                "archs": len(pairs),
                "mean_ap": float(np.mean(at_epoch)),
                "spearman_with_final_proxy": rank_correlations(at_epoch, finals)["spearman"],
                "spearman_with_reference": rank_correlations(at_epoch, refs)["spearman"],
                "kendall_with_reference": rank_correlations(at_epoch, refs)["kendall"],
            }
        )
    return {"archs_compared": len(both), "correlation": correlation, "top_k": top_k, "noise": noise, "epochs": by_epoch}

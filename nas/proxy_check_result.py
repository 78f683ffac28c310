"""A proxy check's result: the figures of its completed trials, the stored ``proxy_check.json`` and its plots.

``load_result`` and ``reward_noise`` serve ``nas-search status`` and ``plot --proxy_check``: they read
files only (no executor, no TensorFlow).
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from nas.proxy_check_plan import RECIPES, RESULT_FILE, SCHEMA_VERSION, CheckPlan
from nas.trial_store import COMPLETED, FAILED, TrialStore
from nas.workdir import PROXY_CHECK_FILE, Workdir, WorkdirError, atomic_write_json, read_json

# ----- the result --------------------------------------------------------------------------


def collect(wd: Workdir, plan: CheckPlan | None = None) -> dict[str, Any]:
    """Per-architecture results from the check's trial log (read-only)."""
    meta = read_json(wd.join(PROXY_CHECK_FILE), "the proxy check's plan")
    plan_dict = meta["plan"]
    archs = plan_dict["archs"]
    per_arch = [{"proxy": [], "reference": [], "epochs": [], "seeds": {"proxy": [], "reference": []}} for _ in archs]
    costs: dict[str, list[dict[str, float]]] = {r: [] for r in RECIPES}
    counts = {"completed": 0, "failed": 0, "pending": 0}
    resources = {"cpus": 1.0, "gpus": 0.0}
    with TrialStore(wd.log_path, readonly=True) as store:
        if store.runs:
            resources = store.runs[-1].get("resources") or resources
        total = len(archs) * plan_dict["seeds"] * len(RECIPES)
        for trial in store.trials.values():
            spec = trial.proposal
            if trial.status == COMPLETED:
                counts["completed"] += 1
                a = per_arch[spec["arch"]]
                a[spec["recipe"]].append(trial.reward)
                a["seeds"][spec["recipe"]].append(trial.seed)
                metrics = trial.metrics or {}
                if spec["recipe"] == "proxy":
                    curve = {
                        int(k[len("AP_epoch_") :]): v
                        for k, v in metrics.items()
                        if k.startswith("AP_epoch_") and isinstance(v, (int, float))
                    }
                    if curve:
                        a["epochs"].append(curve)
                seconds = (trial.timings or {}).get("evaluate_s")
                if seconds is not None:
                    costs[spec["recipe"]].append({"seconds": seconds, "steps": metrics.get("steps")})
            elif trial.status == FAILED:
                counts["failed"] += 1
        counts["pending"] = total - counts["completed"] - counts["failed"]
    return {"meta": meta, "per_arch": per_arch, "costs": costs, "counts": counts, "resources": resources}


def compute_result(wd: Workdir) -> dict[str, Any]:
    """The check's figures (``nas.proxy_stats.summarize_check``) with the per-architecture table and costs."""
    import numpy as np

    from nas.proxy_stats import summarize_check

    data = collect(wd)
    meta, per_arch = data["meta"], data["per_arch"]
    plan = meta["plan"]
    summary = summarize_check(per_arch)
    archs = []
    for spec, a in zip(plan["archs"], per_arch):
        row = {"label": spec["label"], "source": spec["source"], "fingerprint": spec["fingerprint"]}
        for recipe in RECIPES:
            values = a[recipe]
            row[recipe] = {
                "values": values,
                "seeds": a["seeds"][recipe],
                "mean": float(np.mean(values)) if values else None,
                "std": float(np.std(values, ddof=1)) if len(values) >= 2 else None,
            }
        epochs = sorted({e for run in a["epochs"] for e in run})
        row["proxy_by_epoch"] = {str(e): float(np.mean([r[e] for r in a["epochs"] if e in r])) for e in epochs}
        archs.append(row)
    device = "GPU" if data["resources"].get("gpus") else "CPU core"
    per_device = data["resources"].get("gpus") or data["resources"].get("cpus") or 1.0
    cost = {"device": device, "devices_per_trial": per_device}
    for recipe in RECIPES:
        seconds = [c["seconds"] for c in data["costs"][recipe]]
        cost[recipe] = {
            "trials": len(seconds),
            "mean_s": float(np.mean(seconds)) if seconds else None,
            "median_s": float(np.median(seconds)) if seconds else None,
            "mean_device_s": float(np.mean(seconds)) * per_device if seconds else None,
            "steps": next((c["steps"] for c in data["costs"][recipe] if c["steps"]), None),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "check_id": meta["check_id"],
        "workdir": wd.path,
        "experiment": plan["experiment"],
        "reference_overrides": plan["reference_overrides"],
        "seeds": plan["seeds"],
        "num_archs": len(plan["archs"]),
        "trials": {**data["counts"], "total": len(plan["archs"]) * plan["seeds"] * len(RECIPES)},
        "complete": data["counts"]["pending"] == 0,
        "archs": archs,
        **summary,
        "cost": cost,
        "written": time.time(),
        "host": {"cores": os.cpu_count(), "python": platform.python_version()},
    }


def write_result(wd: Workdir, plan: CheckPlan | None = None) -> dict[str, Any]:
    """Computes the result, writes ``proxy_check.json`` and the plots; returns the result."""
    from nas.proxy_check_plots import plot_learning_curves, plot_proxy_vs_reference

    result = compute_result(wd)
    os.makedirs(wd.join("plots"), exist_ok=True)
    result["plots"] = [
        plot_proxy_vs_reference(result, wd.join("plots", "proxy_vs_reference.png")),
        plot_learning_curves(result, wd.join("plots", "learning_curves.png")),
    ]
    atomic_write_json(wd.join(RESULT_FILE), result)
    return result


def load_result(path: str) -> dict[str, Any]:
    """A check's stored result: ``path`` is the check's directory or its ``proxy_check.json``.

    Raises:
      WorkdirError: no result there (the check has not run), or it is unreadable.
    """
    file = path if path.endswith(".json") else os.path.join(path, RESULT_FILE)
    if not os.path.exists(file):
        raise WorkdirError(f"{file}: no proxy-check result there; run nas-search proxy-check --workdir={path} first")
    result = read_json(file, "the proxy-check result")
    if not isinstance(result, dict) or result.get("schema_version") != SCHEMA_VERSION or "noise" not in result:
        raise WorkdirError(f"{file}: not a proxy-check result of this version")
    return result


def reward_noise(result: dict[str, Any], path: str) -> dict[str, Any]:
    """What a search's status and plot show of a check: the proxy's std between seeds and where it comes from."""
    noise = result["noise"]["proxy"]
    return {
        "seed_std": noise["seed_std"],
        "snr": noise["snr"],
        "archs": noise["archs_with_seeds"],
        "seeds": result["seeds"],
        "experiment": result["experiment"],
        "source": path,
        "text": (
            f"reward std between seeds: {noise['seed_std']:.3f} (proxy-check {path}, "
            f"{noise['archs_with_seeds']} archs x {result['seeds']} seeds, {result['experiment']})"
            if noise["seed_std"] is not None
            else f"reward std between seeds: unknown (proxy-check {path} has no architecture with 2 seeds done)"
        ),
    }

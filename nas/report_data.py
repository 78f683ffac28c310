"""What the search report shows, gathered from a workdir: its tables, its figures as data URIs.

The pieces ``nas.report.build_report`` assembles: the best architectures
(with their diagrams and export downloads), the accuracy/cost trade-offs and
their Pareto fronts, the controller's reported statistics, the rungs of a
multi-fidelity search, the device time spent and the failures' error reports.
Every figure is drawn by ``nas.plots`` (or ``nas.fidelity_plots``) into a
``data:`` URI, so the page needs nothing beside it. Everything here reads.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import io
import os
from collections.abc import Callable
from typing import Any

from nas.pareto import pareto_front, trial_costs
from nas.trial_store import COMPLETED, Trial, TrialStore
from nas.workdir import Workdir

# Above this many points the trade-off plots are PNG (an SVG of thousands of dots is megabytes).
SVG_POINTS = 400


def data_uri(data: bytes, mime: str) -> str:
    """``data:MIME;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure(draw: Callable[[io.BytesIO, str], Any], fmt: str) -> str:
    """What ``draw(buffer, fmt)`` draws, as a data URI (``fmt``: ``svg`` or ``png``)."""
    import matplotlib

    buf = io.BytesIO()
    # Text as text, not as outlines: a third of the size; every browser has a sans-serif font.
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "sans-serif"}):
        draw(buf, fmt)
    return data_uri(buf.getvalue(), "image/svg+xml" if fmt == "svg" else "image/png")


def device_hours(store: TrialStore, devices_per_trial: float) -> float:
    """Run time of every attempt (started to its outcome), times the devices a trial holds, in hours.

    An attempt cut short by the end of its driver (a ``run`` record before its
    outcome) is not counted: when it stopped is not recorded.
    """
    open_attempts: dict[int, float] = {}
    seconds = 0.0
    for record in store.records:
        event, tid = record["event"], record.get("trial_id")
        if event == "run":
            open_attempts.clear()
        elif event == "started":
            open_attempts[tid] = record["time"]
        elif event in ("rung", "completed", "attempt_failed", "failed") and tid in open_attempts:
            seconds += max(0.0, record["time"] - open_attempts.pop(tid))
    return seconds * devices_per_trial / 3600.0


def number(value: Any) -> float | None:
    """``value`` as a float when it is a number (a bool is not), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def top_architectures(
    config: Any, store: TrialStore, top: int, search_id: str, diagram: Callable[[Any, str], str]
) -> list[dict[str, Any]]:
    """The ``top`` best distinct architectures (by their best reward), with everything the report shows.

    ``diagram(architecture, caption)`` draws an architecture's diagram as a data URI
    (``nas.report_decisions.ReportCache.diagram``: kept between reports).
    """
    from nas.export_formats import export_filename, export_text
    from search_space import architecture_from_dict

    by_fingerprint: dict[str, list[Trial]] = collections.defaultdict(list)
    for t in sorted(store.trials.values(), key=lambda t: t.trial_id):
        by_fingerprint[t.fingerprint].append(t)
    ranked = []
    for t in store.best(len(store.trials)):
        if t.fingerprint not in [r.fingerprint for r in ranked]:
            ranked.append(t)
        if len(ranked) == top:
            break
    out = []
    for rank, best in enumerate(ranked, start=1):
        arch, _ = architecture_from_dict(best.architecture)
        cost = config.model.cost(arch)
        caption = f"rank {rank}: trial {best.trial_id}, reward {best.reward:.4f}"
        picture = diagram(arch, caption)
        downloads = [
            (
                export_filename(rank, best.trial_id, fmt),
                data_uri(
                    export_text(arch, fmt, trial_id=best.trial_id, reward=best.reward, search_id=search_id).encode(),
                    "application/json",
                ),
            )
            for fmt in ("json", "block_specs")
        ]
        runs = [
            {
                "trial_id": t.trial_id,
                "seed": t.seed,
                "attempts": t.attempts,
                "status": t.status,
                "reward": t.reward,
                "reused_from": t.reused_from,
                "error": t.error,
            }
            for t in by_fingerprint[best.fingerprint]
        ]
        rewards = [r["reward"] for r in runs if r["status"] == COMPLETED and r["reused_from"] is None]
        metrics = {k: v for k, v in (best.metrics or {}).items() if number(v) is not None}
        out.append(
            {
                "rank": rank,
                "trial_id": best.trial_id,
                "reward": best.reward,
                "mean_reward": sum(rewards) / len(rewards) if rewards else None,
                "fingerprint": best.fingerprint,
                "params": cost.params,
                "multiply_adds": cost.multiply_adds,
                "metrics": metrics,
                "diagram": picture,
                "blocks": [dataclasses.asdict(b) for b in cost.blocks],
                "runs": runs,
                "downloads": downloads,
                "scaling": dataclasses.asdict(arch.scaling),
            }
        )
    return out


def cost_trade_offs(config: Any, completed: list[Trial], top_ids: dict[int, int], cost_cache: dict) -> list[dict]:
    """AP (the reward's metric) against multiply-adds and against parameters, with the Pareto front."""
    from nas.plots import plot_cost_tradeoff

    reward = config.reward
    metric = reward.metric
    points = []
    for t in completed:
        value = number((t.metrics or {}).get(metric))
        if value is None:
            value = t.reward
        points.append((t, value, trial_costs(config, t, cost_cache)))
    fmt = "svg" if len(points) <= SVG_POINTS else "png"
    out = []
    for key, unit, scale, named in (
        ("multiply_adds", "multiply-adds (billions)", 1e9, "billion multiply-adds"),
        ("params", "parameters (millions)", 1e6, "million parameters"),
    ):
        costs = [c[key] / scale for _, _, c in points]
        values = [v for _, v, _ in points]
        front = pareto_front(costs, values)
        target = iso = None
        if reward.cost == key:
            target = reward.cost_target / scale
            best = max((t.reward for t, _, _ in points), default=None)
            if best is not None:
                iso = (
                    best,
                    reward.exponent_within_budget,
                    reward.exponent_over_budget,
                    f"{metric} that earns the best reward ({best:.3f})",
                )
        labels = {i: f"#{top_ids[t.trial_id]}" for i, (t, _, _) in enumerate(points) if t.trial_id in top_ids}
        title = f"{metric} against {unit.split(' (')[0]} ({len(points)} completed trials)"
        image = figure(
            lambda buf, f, c=costs, v=values, fr=front, u=unit, ti=title, ta=target, iv=iso, lb=labels: (
                plot_cost_tradeoff(
                    c, v, fr, buf, xlabel=u, ylabel=metric, title=ti, target=ta, iso_value=iv, labels=lb, fmt=f
                )
            ),
            fmt,
        )
        front_rows = [
            {
                "trial_id": points[i][0].trial_id,
                "value": values[i],
                "cost": points[i][2][key],
                "reward": points[i][0].reward,
            }
            for i in front
        ]
        target_text = None if target is None else f"{target:.4g} {named}"
        out.append({"key": key, "unit": unit, "image": image, "front": front_rows, "target": target_text})
    return out


def controller_panels(store: TrialStore, workdir: Workdir) -> list[tuple[str, list]]:
    """Entropy, baseline and the other statistics the controller reported after each trial (TensorBoard events)."""
    from nas.events import read_scalars

    scalars = read_scalars(workdir.join("tensorboard"))

    def series(tag: str, label: str, style: str = "line"):
        values = scalars.get(tag) or {}
        steps = sorted(values)
        return (label, steps, [values[s] for s in steps], style)

    panels = []
    entropy_lines = []
    sampled = [(t.trial_id, t.proposal.get("data", {}).get("entropy")) for t in store.trials.values()]
    sampled = [(i, e) for i, e in sorted(sampled) if number(e) is not None]
    if sampled:
        entropy_lines.append(("entropy of each proposal's sampled sequence", *map(list, zip(*sampled)), "points"))
    if "controller/entropy" in scalars:
        entropy_lines.append(series("controller/entropy", "entropy in the last update (batch mean)"))
    if entropy_lines:
        panels.append(("entropy (nats)", entropy_lines))
    if "controller/baseline" in scalars:
        baseline = [series("controller/baseline", "baseline (moving average of rewards)")]
        if "search/reward" in scalars:
            baseline.insert(0, series("search/reward", "reward", "points"))
        panels.append(("baseline", baseline))
    if "controller/population_mean_reward" in scalars:
        panels.append(("population", [series("controller/population_mean_reward", "mean reward of the population")]))
    return panels


def fidelity_view(config: Any, store: TrialStore, trials: list[Trial], title: str) -> dict[str, Any] | None:
    """The rungs of a multi-fidelity search: ``nas.fidelity.summary`` and its figure; None at full fidelity."""
    from nas.fidelity import RungPlan, summary
    from nas.fidelity_plots import plot_rungs

    plan = RungPlan.of(config)
    if plan is None:
        return None
    info = summary(store, plan)
    info["image"] = figure(lambda buf, fmt: plot_rungs(trials, plan, info, buf, title, fmt=fmt), "png")
    return info


def reward_text(reward: Any) -> str:
    """The reward's formula, as the report states it."""
    from controller.reward import COST_NONE

    if reward.cost == COST_NONE:
        return f"{reward.metric} (raw)"
    return (
        f"{reward.metric} x ({reward.cost} / {reward.cost_target:.4g}) ^ w, w = {reward.exponent_within_budget:g} "
        f"within the target, {reward.exponent_over_budget:g} over it"
    )


def error_tail(workdir: Workdir, trial: Trial, lines: int = 12) -> str:
    """The last lines of the trial's last error report (``trials/NNNNNN/error_attemptK.txt``), if any."""
    directory = workdir.join("trials", f"{trial.trial_id:06d}")
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith("error_attempt") and n.endswith(".txt"))
    except OSError:
        return ""
    if not names:
        return ""
    try:
        with open(os.path.join(directory, names[-1]), errors="replace") as f:
            text = f.read()[-20_000:]
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])

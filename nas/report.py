"""A search as one self-contained HTML file: ``nas-search report`` and the report a running search refreshes.

``build_report`` reads a workdir (never writing to it) and gathers what the
report shows; ``nas.report_html`` lays it out. Every picture is inline (PNG
or SVG data URIs), so the file opens from disk with no network and no
server. ``write_report`` writes it atomically (``WORKDIR/report.html`` by
default); ``PeriodicReport`` is what the search loop calls after each result
(``search.report_every``).

What the controller learned is read two ways. An algorithm with a policy
(``Controller.sample_policy``: REINFORCE, PPO) is asked for sequences drawn
from its initial policy (a fresh controller of the same config and seed) and
from its current one (the live controller in a running search, else the
newest snapshot); an algorithm without one (random search, evolution) is
described by its proposals: the first ones against the latest ones.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import io
import os
import time
from collections.abc import Callable
from typing import Any

from nas.decision_stats import Heatmap, biggest_changes, decision_heatmaps
from nas.pareto import pareto_front
from nas.trial_store import COMPLETED, FAILED, Trial, TrialStore
from nas.workdir import Workdir

REPORT_NAME = "report.html"
# Sequences drawn from a policy for its heatmaps: a share's standard error is at most 4.4 points.
POLICY_SAMPLES = 128
# Proposals compared (first and latest) when the algorithm has no policy to draw from.
PROPOSAL_WINDOW = 200
# Trials in the moving average of rewards: 10, or a fiftieth of the trials in a longer search.
MOVING_AVERAGE = 10
MAX_FAILURES_SHOWN = 100
# Above this many points the trade-off plots are PNG (an SVG of thousands of dots is megabytes).
SVG_POINTS = 400


def data_uri(data: bytes, mime: str) -> str:
    """``data:MIME;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _figure(draw: Callable[[io.BytesIO, str], Any], fmt: str) -> str:
    import matplotlib

    buf = io.BytesIO()
    # Text as text, not as outlines: a third of the size; every browser has a sans-serif font.
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "sans-serif"}):
        draw(buf, fmt)
    return data_uri(buf.getvalue(), "image/svg+xml" if fmt == "svg" else "image/png")


@dataclasses.dataclass
class DecisionView:
    """The heatmaps of one moment of the search (the start, or now) and where they come from."""

    label: str
    heatmaps: list[Heatmap]


class ReportCache:
    """What a report computes that later reports of the same search reuse.

    The initial policy's samples (computed once: a fresh controller of the
    config and seed), the architecture diagrams (by architecture and
    caption: the best architectures change rarely) and the costs of the
    architectures the cost model was asked for.

    Args:
      config: the search's ``ExperimentConfig``.
      encoding: its ``DecisionEncoding``.
    """

    def __init__(self, config: Any, encoding: Any):
        self.config = config
        self.encoding = encoding
        self.diagrams: dict[tuple[str, str], str] = {}
        self.costs: dict[str, dict[str, int]] = {}  # fingerprint -> params, multiply_adds (the cost model)
        self._start: list[tuple[int, ...]] | None = None
        self._has_policy: bool | None = None

    def _fresh_controller(self):
        from controller import build_controller

        return build_controller(self.config.controller, self.encoding, seed=self.config.search.seed)

    def start_samples(self) -> list[tuple[int, ...]] | None:
        """Sequences from the initial policy, or None when the algorithm has none."""
        if self._has_policy is None:
            samples = self._fresh_controller().sample_policy(POLICY_SAMPLES, self.config.search.seed)
            self._has_policy = samples is not None
            self._start = samples
        return self._start

    def now_samples(self, controller: Any, snapshot: dict | None) -> tuple[list[tuple[int, ...]] | None, str]:
        """Sequences from the current policy: of ``controller`` if given, else of ``snapshot``.

        The same seed as the start's: where the policy has not moved, the
        same draws give the same architectures, so a difference in the
        heatmaps is the policy's, not the sampling's.

        Returns:
          (sequences or None, where they come from).
        """
        from controller.base import ControllerStateError

        if controller is not None:
            return controller.sample_policy(POLICY_SAMPLES, self.config.search.seed), "the running controller"
        if snapshot is None:
            return self.start_samples(), "the initial policy (no controller snapshot yet)"
        restored = self._fresh_controller()
        try:
            restored.set_state(snapshot["controller"])
        except ControllerStateError as e:
            return None, f"no policy: the newest snapshot is refused ({e})"
        where = f"the newest controller snapshot (log record {snapshot['log_seq']})"
        return restored.sample_policy(POLICY_SAMPLES, self.config.search.seed), where

    def diagram(self, arch: Any, caption: str) -> str:
        """The architecture's diagram (``nas.plots.plot_architecture``) as an SVG data URI."""
        from nas.plots import plot_architecture

        key = (arch.fingerprint(), caption)
        if key not in self.diagrams:
            self.diagrams[key] = _figure(lambda buf, fmt: plot_architecture(arch, buf, caption, fmt=fmt), "svg")
        return self.diagrams[key]


def _decision_views(
    cache: ReportCache, store: TrialStore, controller: Any, snapshot: dict | None
) -> tuple[DecisionView | None, DecisionView | None, str]:
    """(start, now, how they were obtained)."""
    encoding = cache.encoding
    start = cache.start_samples()
    if start is not None:
        now, where = cache.now_samples(controller, snapshot)
        if now is not None:
            how = (
                f"{POLICY_SAMPLES} architectures drawn from the policy at the start (a fresh controller of this "
                f"config and seed) and now (from {where}); each share is a count over them"
            )
            return (
                DecisionView("at the start (initial policy)", decision_heatmaps(encoding, start)),
                DecisionView("now", decision_heatmaps(encoding, now)),
                how,
            )
    trials = sorted(store.trials.values(), key=lambda t: t.trial_id)
    if not trials:
        return None, None, "no proposal yet"
    window = max(1, min(PROPOSAL_WINDOW, len(trials) // 2))
    first, last = trials[:window], trials[-window:]
    views = []
    for label, group in (("first", first), ("latest", last)):
        sequences = [t.proposal["decisions"] for t in group]
        text = f"{label} {len(group)} proposals (trials {group[0].trial_id}-{group[-1].trial_id})"
        views.append(DecisionView(text, decision_heatmaps(encoding, sequences)))
    how = (
        f"the algorithm ({cache.config.controller.algorithm}) has no policy to draw from: the shares are counted "
        "over its first and its latest proposals"
    )
    return views[0], views[1], how


def _device_hours(store: TrialStore, devices_per_trial: float) -> float:
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
        elif event in ("completed", "attempt_failed", "failed") and tid in open_attempts:
            seconds += max(0.0, record["time"] - open_attempts.pop(tid))
    return seconds * devices_per_trial / 3600.0


def _costs(config: Any, trial: Trial, cache: dict[str, dict[str, int]]) -> dict[str, int]:
    """Parameters and multiply-adds: the trial's own metrics, else the cost model (by fingerprint)."""
    from nas.reward_fn import architecture_costs
    from search_space import architecture_from_dict

    metrics = trial.metrics or {}
    if isinstance(metrics.get("params"), int) and isinstance(metrics.get("multiply_adds"), int):
        return {"params": metrics["params"], "multiply_adds": metrics["multiply_adds"]}
    if trial.fingerprint not in cache:
        cache[trial.fingerprint] = architecture_costs(config, architecture_from_dict(trial.architecture)[0])
    return cache[trial.fingerprint]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _top_architectures(
    config: Any, store: TrialStore, top: int, search_id: str, cache: ReportCache
) -> list[dict[str, Any]]:
    """The ``top`` best distinct architectures (by their best reward), with everything the report shows."""
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
        diagram = cache.diagram(arch, caption)
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
        metrics = {k: v for k, v in (best.metrics or {}).items() if _number(v) is not None}
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
                "diagram": diagram,
                "blocks": [dataclasses.asdict(b) for b in cost.blocks],
                "runs": runs,
                "downloads": downloads,
                "scaling": dataclasses.asdict(arch.scaling),
            }
        )
    return out


def _trade_offs(config: Any, completed: list[Trial], top_ids: dict[int, int], cost_cache: dict) -> list[dict]:
    """AP (the reward's metric) against multiply-adds and against parameters, with the Pareto front."""
    from nas.plots import plot_cost_tradeoff

    reward = config.reward
    metric = reward.metric
    points = []
    for t in completed:
        value = _number((t.metrics or {}).get(metric))
        if value is None:
            value = t.reward
        points.append((t, value, _costs(config, t, cost_cache)))
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
        image = _figure(
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


def _controller_panels(store: TrialStore, workdir: Workdir) -> list[tuple[str, list]]:
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
    sampled = [(i, e) for i, e in sorted(sampled) if _number(e) is not None]
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


def build_report(
    workdir_path: str,
    *,
    top: int = 5,
    controller: Any = None,
    cache: ReportCache | None = None,
    now: float | None = None,
) -> str:
    """The HTML of the report of the search in ``workdir_path``; reads only.

    Args:
      workdir_path: the search's directory.
      top: how many of the best distinct architectures to show.
      controller: the live controller of a running search (its policy is
        "now"); None: the newest snapshot's.
      cache: a ``ReportCache`` kept between reports of this search; None: a new one.
      now: the time of the report (default: the clock).

    Raises:
      WorkdirError: no search in the directory, or its files are corrupt.
      TrialLogError: a corrupt trial log.
    """
    from experiments.overrides import config_to_dict, flatten
    from nas.plots import plot_rewards, plot_series
    from nas.progress import eta_seconds, format_duration
    from nas.report_html import render
    from nas.search_loop import summarize
    from search_space import DecisionEncoding, space_size

    now = time.time() if now is None else now
    workdir = Workdir(workdir_path)
    config = workdir.config()
    search_id = workdir.search_id()
    encoding = DecisionEncoding(config.search_space)
    cache = cache or ReportCache(config, encoding)
    with TrialStore(workdir.log_path, readonly=True) as store:
        trials = sorted(store.trials.values(), key=lambda t: t.trial_id)
        completed = [t for t in trials if t.status == COMPLETED and t.reward is not None]
        counts = summarize(store)
        holder = workdir.holder()
        records = store.records
        first = records[0]["time"] if records else None
        last = records[-1]["time"] if records else None
        elapsed = ((now if holder else last) - first) if first else 0.0
        run_started = store.runs[-1]["time"] if store.runs else None
        eta = eta_seconds(store, config.search.max_trials, run_started) if holder and run_started else None
        devices = config.search.trial_gpus if config.search.trial_gpus > 0 else 1.0
        size = space_size(config.search_space)
        best = store.best(1)
        top_archs = _top_architectures(config, store, top, search_id, cache)
        top_ids = {a["trial_id"]: a["rank"] for a in top_archs}
        title = f"{config.name}: {config.controller.algorithm}, {len(trials)} trials"
        rewards_image = _figure(
            lambda buf, fmt: plot_rewards(trials, buf, title, window=max(MOVING_AVERAGE, len(trials) // 50), fmt=fmt),
            "svg" if len(trials) <= SVG_POINTS else "png",
        )
        trade_offs = _trade_offs(config, completed, top_ids, cache.costs)
        snapshot, _, _ = workdir.latest_snapshot()
        start_view, now_view, decisions_how = _decision_views(cache, store, controller, snapshot)
        panels = _controller_panels(store, workdir)
        stats_image = None
        if panels:
            stats_image = _figure(
                lambda buf, fmt: plot_series(
                    panels,
                    buf,
                    xlabel="trial",
                    title=f"what the {config.controller.algorithm} controller reported after each trial",
                    fmt=fmt,
                ),
                "png",
            )
        failed = [t for t in trials if t.status == FAILED]
        failures = [
            {"trial_id": t.trial_id, "attempts": t.attempts, "error": t.error or "", "details": _error_tail(workdir, t)}
            for t in failed[-MAX_FAILURES_SHOWN:]
        ]
        failure_kinds = collections.Counter((t.error or "").split(":", 1)[0][:80] for t in failed)
        retried = sum(1 for r in records if r["event"] == "attempt_failed")
        fidelity = _fidelity_view(config, store, trials, title)
    state = f"running ({holder})" if holder else "not running"
    glance = {
        "experiment": config.name,
        "algorithm": config.controller.algorithm,
        "search_id": search_id,
        "workdir": workdir.path,
        "state": state,
        "running_now": holder is not None,
        "max_trials": config.search.max_trials,
        "proposed": len(trials),
        "in_flight": counts["running"],
        "completed": counts["completed"],
        "reused": counts["reused"],
        "failed": counts["failed"],
        "retried_attempts": retried,
        "elapsed": format_duration(elapsed),
        "eta": format_duration(eta) if eta is not None else ("?" if holder else "-"),
        "device_hours": _device_hours(store, devices),
        "devices_per_trial": devices,
        "best_reward": best[0].reward if best else None,
        "best_trial": best[0].trial_id if best else None,
        "reward": _reward_text(config.reward),
        "space": {
            "blocks": size.num_blocks,
            "decisions": len(encoding),
            "total": size.total,
            "total_windowed": size.total_windowed,
            "parent_window": config.search_space.parent_window,
        },
        "controller_stats": (snapshot or {}).get("stats", {}),
    }
    data = {
        "generated": now,
        "glance": glance,
        "rewards_image": rewards_image,
        "trade_offs": trade_offs,
        "top": top_archs,
        "top_requested": top,
        "decisions": {
            "start": start_view,
            "now": now_view,
            "how": decisions_how,
            "changes": biggest_changes(start_view.heatmaps, now_view.heatmaps) if start_view and now_view else [],
        },
        "stats_image": stats_image,
        "failures": failures,
        "failure_count": len(failed),
        "failure_kinds": failure_kinds.most_common(10),
        "config": flatten(config_to_dict(config)),
        "metric": config.reward.metric,
        "fidelity": fidelity,
    }
    return render(data)


def _fidelity_view(config: Any, store: TrialStore, trials: list[Trial], title: str) -> dict[str, Any] | None:
    """The rungs of a multi-fidelity search: ``nas.fidelity.summary`` and its figure; None at full fidelity."""
    from nas.fidelity import RungPlan, summary
    from nas.fidelity_plots import plot_rungs

    plan = RungPlan.of(config)
    if plan is None:
        return None
    info = summary(store, plan)
    info["image"] = _figure(lambda buf, fmt: plot_rungs(trials, plan, info, buf, title, fmt=fmt), "png")
    return info


def _reward_text(reward: Any) -> str:
    from controller.reward import COST_NONE

    if reward.cost == COST_NONE:
        return f"{reward.metric} (raw)"
    return (
        f"{reward.metric} x ({reward.cost} / {reward.cost_target:.4g}) ^ w, w = {reward.exponent_within_budget:g} "
        f"within the target, {reward.exponent_over_budget:g} over it"
    )


def _error_tail(workdir: Workdir, trial: Trial, lines: int = 12) -> str:
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


def write_report(
    workdir_path: str,
    output: str | None = None,
    *,
    top: int = 5,
    controller: Any = None,
    cache: ReportCache | None = None,
) -> str:
    """Builds the report and writes it atomically; returns its absolute path.

    Args:
      workdir_path: the search's directory.
      output: the HTML file (default ``WORKDIR/report.html``).
      top, controller, cache: as for ``build_report``.

    Raises:
      WorkdirError, TrialLogError: as ``build_report``.
      OSError: the file cannot be written (naming it).
    """
    from search_space import write_file_atomically

    text = build_report(workdir_path, top=top, controller=controller, cache=cache)
    path = os.path.abspath(output or os.path.join(workdir_path, REPORT_NAME))
    write_file_atomically(path, text)
    return path


class PeriodicReport:
    """The report a running search refreshes every ``every`` results (``search.report_every``) and at its end.

    The search loop calls ``result_recorded`` after each result and
    ``write`` when its run ends; either may raise (the loop turns that into
    a warning: a report never ends a search).
    """

    def __init__(self, workdir_path: str, config: Any, every: int):
        from search_space import DecisionEncoding

        self.workdir_path = workdir_path
        self.every = every
        self.cache = ReportCache(config, DecisionEncoding(config.search_space))
        self._since = 0
        self._written = False

    def result_recorded(self, controller: Any) -> str | None:
        """Counts one result; writes the report when ``every`` have come since the last one. Returns its path."""
        self._since += 1
        if self._since < self.every:
            return None
        return self._write(controller)

    def write(self, controller: Any) -> str | None:
        """Writes the report unless it is up to date (written after the last result)."""
        if self._written and self._since == 0:
            return None
        return self._write(controller)

    def _write(self, controller: Any) -> str:
        self._since = 0
        path = write_report(self.workdir_path, controller=controller, cache=self.cache)
        self._written = True
        return path

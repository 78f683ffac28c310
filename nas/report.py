"""A search as one self-contained HTML file: ``nas-search report`` and the report a running search refreshes.

``build_report`` reads a workdir (never writing to it) and assembles what the
report shows (``nas.report_data``: the tables and figures;
``nas.report_decisions``: what the controller learned); ``nas.report_html``
lays it out. Every picture is inline (PNG or SVG data URIs), so the file
opens from disk with no network and no server. ``write_report`` writes it
atomically (``WORKDIR/report.html`` by default); ``PeriodicReport`` is what
the search loop calls after each result (``search.report_every``).
"""

from __future__ import annotations

import collections
import os
import time
from typing import Any

from nas.decision_stats import biggest_changes
from nas.report_data import (
    SVG_POINTS,
    controller_panels,
    cost_trade_offs,
    device_hours,
    error_tail,
    fidelity_view,
    figure,
    reward_text,
    top_architectures,
)
from nas.report_decisions import ReportCache, decision_views
from nas.trial_store import COMPLETED, FAILED, TrialStore
from nas.workdir import Workdir

REPORT_NAME = "report.html"
# Trials in the moving average of rewards: 10, or a fiftieth of the trials in a longer search.
MOVING_AVERAGE = 10
MAX_FAILURES_SHOWN = 100


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
        top_archs = top_architectures(config, store, top, search_id, cache.diagram)
        top_ids = {a["trial_id"]: a["rank"] for a in top_archs}
        title = f"{config.name}: {config.controller.algorithm}, {len(trials)} trials"
        rewards_image = figure(
            lambda buf, fmt: plot_rewards(trials, buf, title, window=max(MOVING_AVERAGE, len(trials) // 50), fmt=fmt),
            "svg" if len(trials) <= SVG_POINTS else "png",
        )
        trade_offs = cost_trade_offs(config, completed, top_ids, cache.costs)
        snapshot, _, _ = workdir.latest_snapshot()
        start_view, now_view, decisions_how = decision_views(cache, store, controller, snapshot)
        panels = controller_panels(store, workdir)
        stats_image = None
        if panels:
            stats_image = figure(
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
            {"trial_id": t.trial_id, "attempts": t.attempts, "error": t.error or "", "details": error_tail(workdir, t)}
            for t in failed[-MAX_FAILURES_SHOWN:]
        ]
        failure_kinds = collections.Counter((t.error or "").split(":", 1)[0][:80] for t in failed)
        retried = sum(1 for r in records if r["event"] == "attempt_failed")
        fidelity = fidelity_view(config, store, trials, title)
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
        "device_hours": device_hours(store, devices),
        "devices_per_trial": devices,
        "best_reward": best[0].reward if best else None,
        "best_trial": best[0].trial_id if best else None,
        "reward": reward_text(config.reward),
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

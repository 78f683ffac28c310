"""``nas-search plot``: PNG plots of a search."""

from __future__ import annotations

import json
import os

from nas.cli_flags import FLAGS
from nas.commands.search import require_workdir

FLAGS_USED = ("workdir", "proxy_check", "json")


def plot_search(workdir_path: str, proxy_check: str | None = None) -> list[str]:
    """Writes WORKDIR/plots/rewards.png, pareto.png, best_architecture.png (and rungs.png, multi-fidelity).

    ``pareto.png``: the reward's metric against the cost (a cost-aware reward's, else multiply-adds) of
    every trial trained, the Pareto front drawn, the cost target marked. Returns the paths written.

    With ``proxy_check`` (a proxy check's directory) the rewards plot shows a
    band of one std between seeds (as the check measured it) below the best so far.

    Raises:
      WorkdirError: no search in the directory, or no proxy-check result in ``proxy_check``.
    """
    from nas.plots import plot_architecture, plot_rewards
    from nas.trial_store import TrialStore
    from nas.workdir import Workdir
    from search_space import architecture_from_dict

    workdir = Workdir(workdir_path)
    config = workdir.config()
    out = workdir.join("plots")
    os.makedirs(out, exist_ok=True)
    with TrialStore(workdir.log_path, readonly=True) as store:
        trials = list(store.trials.values())
        best = store.best(1)
        from nas.fidelity import RungPlan, summary

        plan = RungPlan.of(config)
        fidelity = summary(store, plan) if plan is not None else None
        from nas.pareto import search_front

        front = search_front(config, trials)
    title = f"{config.name}: {config.controller.algorithm}, {len(trials)} trials"
    noise = {}
    if proxy_check:
        from nas.proxy_check_result import load_result, reward_noise

        measured = reward_noise(load_result(proxy_check), proxy_check)
        noise = {"noise_std": measured["seed_std"], "noise_label": f"between seeds, proxy-check {proxy_check}"}
    paths = [plot_rewards(trials, os.path.join(out, "rewards.png"), title, **noise)]
    if fidelity is not None:
        from nas.fidelity_plots import plot_rungs

        paths.append(plot_rungs(trials, plan, fidelity, os.path.join(out, "rungs.png"), title))
    if front["points"]:
        from nas.pareto import COSTS
        from nas.plots import plot_cost_tradeoff

        unit, scale = COSTS[front["cost"]]
        target = front["cost_target"]
        paths.append(
            plot_cost_tradeoff(
                [p["cost"] / scale for p in front["points"]],
                [p["value"] for p in front["points"]],
                front["front"],
                os.path.join(out, "pareto.png"),
                xlabel=unit,
                ylabel=front["metric"],
                title=f"{title}: {front['metric']} against {unit.split(' (')[0]}",
                target=None if target is None else target / scale,
            )
        )
    if best:
        arch, _ = architecture_from_dict(best[0].architecture)
        caption = f"best architecture: trial {best[0].trial_id}, reward {best[0].reward:.4f}"
        paths.append(plot_architecture(arch, os.path.join(out, "best_architecture.png"), caption))
    return paths


def cmd_plot() -> int:
    """Writes the plots."""
    paths = plot_search(require_workdir(), FLAGS.proxy_check)
    print(json.dumps({"files": paths}, indent=2) if FLAGS.json else "\n".join(paths))
    return 0

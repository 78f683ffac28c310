"""``nas-search plot``: PNG plots of a search."""

from __future__ import annotations

import json
import os

from nas.cli_flags import FLAGS
from nas.commands.search import require_workdir

FLAGS_USED = ("workdir", "json")


def plot_search(workdir_path: str) -> list[str]:
    """Writes WORKDIR/plots/rewards.png and best_architecture.png; returns the paths.

    Raises:
      WorkdirError: no search in the directory.
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
    title = f"{config.name}: {config.controller.algorithm}, {len(trials)} trials"
    paths = [plot_rewards(trials, os.path.join(out, "rewards.png"), title)]
    if best:
        arch, _ = architecture_from_dict(best[0].architecture)
        caption = f"best architecture: trial {best[0].trial_id}, reward {best[0].reward:.4f}"
        paths.append(plot_architecture(arch, os.path.join(out, "best_architecture.png"), caption))
    return paths


def cmd_plot() -> int:
    """Writes the plots."""
    paths = plot_search(require_workdir())
    print(json.dumps({"files": paths}, indent=2) if FLAGS.json else "\n".join(paths))
    return 0

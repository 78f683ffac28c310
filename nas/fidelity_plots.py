"""The rungs of a multi-fidelity search as a figure (``nas-search plot``, the report)."""

from __future__ import annotations

from typing import Any

from nas.fidelity import RungPlan, summary_lines


def plot_rungs(trials: list[Any], plan: RungPlan, info: dict[str, Any], path: Any, title: str, fmt: str = "png") -> Any:
    """Each trained trial's metric at every rung it reached (promoted: a line on; stopped: a cross), with the
    counts per rung and the epochs spent against a full-fidelity search of the same proposals. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, text) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    for t in trials:
        points = [(plan.epochs[e["rung"]], e["metric"]) for e in t.rungs if e.get("metric") is not None]
        if not points:
            continue
        xs, ys = zip(*points)
        final = t.rungs[-1]["decision"] == "final"
        ax.plot(xs, ys, "-", color="tab:blue" if final else "0.75", lw=1.0 if final else 0.6, zorder=2 if final else 1)
        if t.rungs[-1]["decision"] == "stopped":
            ax.plot(xs[-1], ys[-1], "x", color="tab:red", ms=4, zorder=3)
    ax.set_xticks(plan.epochs)
    ax.set_xlabel("epochs (rungs)")
    ax.set_ylabel("metric at the rung")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    text.axis("off")
    text.text(0.0, 1.0, "\n".join(summary_lines(info)), va="top", family="monospace", fontsize=8, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format=fmt)
    plt.close(fig)
    return path

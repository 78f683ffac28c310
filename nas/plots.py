"""The pictures of a search: rewards over trials, and an architecture drawn as the SpineNet paper draws them."""

from __future__ import annotations

import os

from search_space import Architecture

_TYPE_COLOURS = {"bottleneck": "#4C72B0", "residual": "#DD8452"}


def pyplot():
    """matplotlib's pyplot, drawing to files (the Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_rewards(
    trials: list, path: str, title: str, window: int = 10, noise_std: float | None = None, noise_label: str = ""
) -> str:
    """Reward per trial, the best-so-far line and a moving average.

    Args:
      trials: ``Trial`` records of the log, any order.
      path: the PNG to write.
      title: the figure title.
      window: trials in the moving average.
      noise_std: the reward's std between seeds (a proxy check's): a band
        of one std below the best so far shows which rewards are within
        noise of it.
      noise_label: where ``noise_std`` comes from, for the legend.

    Returns:
      ``path``.
    """
    plt = pyplot()
    trials = sorted(trials, key=lambda t: t.trial_id)
    done = [t for t in trials if t.status == "completed" and t.reward is not None]
    failed = [t for t in trials if t.status == "failed"]
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    if done:
        xs = [t.trial_id for t in done]
        ys = [t.reward for t in done]
        reused = [t for t in done if t.reused_from is not None]
        ax.scatter(xs, ys, s=14, color="#4C72B0", alpha=0.7, label="reward of a trial")
        if reused:
            ax.scatter(
                [t.trial_id for t in reused],
                [t.reward for t in reused],
                s=14,
                facecolors="none",
                edgecolors="#4C72B0",
                label="reused result",
            )
        best, best_ys = float("-inf"), []
        for y in ys:
            best = max(best, y)
            best_ys.append(best)
        ax.step(xs, best_ys, where="post", color="#C44E52", linewidth=2, label="best so far")
        if noise_std:
            lows = [b - noise_std for b in best_ys]
            ax.fill_between(xs, lows, best_ys, step="post", color="#C44E52", alpha=0.15,
                            label=f"within 1 std of the best ({noise_std:.3f} {noise_label})".replace(" )", ")"))  # fmt: skip
        if len(ys) >= 2:
            avg = [
                sum(ys[max(0, i - window + 1) : i + 1]) / len(ys[max(0, i - window + 1) : i + 1])
                for i in range(len(ys))
            ]
            ax.plot(xs, avg, color="#55A868", linewidth=2, label=f"moving average ({window} trials)")
    if failed:
        floor = min((t.reward for t in done), default=0.0)
        ax.scatter([t.trial_id for t in failed], [floor] * len(failed), marker="x", color="black", label="failed trial")
    ax.set_xlabel("trial")
    ax.set_ylabel("reward")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if done or failed:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finished trial yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_architecture(arch: Architecture, path: str, title: str) -> str:
    """Blocks in build order left to right, height by level, cross-scale edges, outputs highlighted.

    Returns:
      ``path``.
    """
    plt = pyplot()
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    m = arch.num_stem
    levels = [s.level for s in arch.stem] + [b.level for b in arch.blocks]
    fns = [s.block_fn for s in arch.stem] + [b.block_fn for b in arch.blocks]
    n = len(levels)
    fig, ax = plt.subplots(figsize=(max(8, 0.75 * n + 2), 4.8), dpi=110)
    unconsumed = set(arch.unconsumed_intermediate())
    outputs = {m + k: b.level for k, b in enumerate(arch.blocks) if b.is_output}
    for k, block in enumerate(arch.blocks):
        child = m + k
        for p in block.parents:
            # Bend near-horizontal edges so they do not run through the blocks between;
            # long ones bend less, so that they stay inside the picture.
            span = child - p
            rad = 0.25 * min(1.0, 3.0 / span) if abs(levels[p] - levels[child]) <= 1 and span > 1 else 0.0
            ax.add_patch(
                FancyArrowPatch(
                    (p, levels[p]),
                    (child, levels[child]),
                    arrowstyle="-|>",
                    mutation_scale=9,
                    color="#777777",
                    linewidth=1.0,
                    alpha=0.8,
                    connectionstyle=f"arc3,rad={rad}",
                    shrinkA=9,
                    shrinkB=9,
                )
            )
    for idx in unconsumed:  # summed into the output of its level
        target = next((o for o, lv in outputs.items() if lv == levels[idx]), None)
        if target is not None:
            ax.add_patch(
                FancyArrowPatch(
                    (idx, levels[idx]),
                    (target, levels[target]),
                    arrowstyle="-|>",
                    mutation_scale=9,
                    color="#777777",
                    linestyle="--",
                    linewidth=1.0,
                    connectionstyle="arc3,rad=-0.3",
                    shrinkA=9,
                    shrinkB=9,
                )
            )
    for i in range(n):
        is_out = i in outputs
        box = FancyBboxPatch(
            (i - 0.3, levels[i] - 0.22),
            0.6,
            0.44,
            boxstyle="round,pad=0.02",
            facecolor=_TYPE_COLOURS.get(fns[i], "#999999"),
            alpha=0.35 if i < m else 0.9,
            edgecolor="black" if is_out else "none",
            linewidth=2.2 if is_out else 0,
        )
        ax.add_patch(box)
        label = f"P{levels[i]}" if is_out else ("stem" if i < m else str(i))
        ax.text(
            i,
            levels[i],
            label,
            ha="center",
            va="center",
            fontsize=7,
            color="white" if i >= m else "black",
            fontweight="bold" if is_out else "normal",
        )
    ax.set_xlim(-0.8, n - 0.2)
    ax.set_ylim(min(levels) - 1.0, max(levels) + 0.9)
    ax.set_yticks(range(min(levels), max(levels) + 1))
    ax.set_yticklabels([f"L{lv}" for lv in range(min(levels), max(levels) + 1)])
    ax.set_xticks(range(n))
    ax.set_xlabel("build order (block index; stem candidates first)")
    ax.set_ylabel("feature level (resolution 1/2^L)")
    ax.set_title(title)
    ax.legend(
        handles=[Patch(color=c, label=f) for f, c in _TYPE_COLOURS.items()]
        + [Patch(facecolor="white", edgecolor="black", linewidth=2, label="output block")],
        loc="upper left",
        fontsize=8,
    )
    ax.grid(axis="y", alpha=0.2)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

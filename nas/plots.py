"""The pictures of a search: rewards over trials, and an architecture drawn as the SpineNet paper draws them."""

from __future__ import annotations

import os
from typing import IO

from search_space import Architecture

_TYPE_COLOURS = {"bottleneck": "#4C72B0", "residual": "#DD8452"}


def pyplot():
    """matplotlib's pyplot, drawing to files (the Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | IO[bytes], fmt: str) -> None:
    """Writes ``fig`` to a file name (its directory created) or to an open binary file."""
    if isinstance(path, str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format=fmt)


def plot_rewards(
    trials: list,
    path: str | IO[bytes],
    title: str,
    window: int = 10,
    fmt: str = "png",
    noise_std: float | None = None,
    noise_label: str = "",
) -> str | IO:
    """Reward per trial, the best-so-far line and a moving average.

    Args:
      trials: ``Trial`` records of the log, any order.
      path: the file to write, or an open binary file.
      title: the figure title.
      window: trials in the moving average.
      fmt: the image format (``png``, ``svg``).
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
    _save(fig, path, fmt)
    plt.close(fig)
    return path


def plot_architecture(arch: Architecture, path: str | IO[bytes], title: str, fmt: str = "png") -> str | IO:
    """Blocks in build order left to right, height by level, cross-scale edges, outputs highlighted.

    ``path`` is a file name or an open binary file; ``fmt`` the image format.

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
    _save(fig, path, fmt)
    plt.close(fig)
    return path


def plot_cost_tradeoff(
    costs: list[float],
    values: list[float],
    front: list[int],
    path: str | IO[bytes],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    target: float | None = None,
    iso_value: tuple[float, float, float, str] | None = None,
    labels: dict[int, str] | None = None,
    fmt: str = "png",
) -> str | IO:
    """A metric against a cost (log scale), the Pareto front drawn as a staircase.

    Args:
      costs, values: one point per trial.
      front: indices of the Pareto front, cheapest first (``nas.pareto.pareto_front``).
      path: a file name or an open binary file.
      xlabel, ylabel, title: the texts.
      target: a cost-aware reward's target, drawn as a vertical line.
      iso_value: ``(reward, exponent within budget, exponent over budget, label)``:
        the curve of metric values that earn ``reward`` at each cost (MnasNet's
        ``metric * (cost / target) ** w``), with ``target`` set.
      labels: text beside some points (index -> text), e.g. the best trials' ranks.
      fmt: the image format.

    Returns:
      ``path``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    if costs:
        on_front = set(front)
        rest = [i for i in range(len(costs)) if i not in on_front]
        ax.scatter(
            [costs[i] for i in rest],
            [values[i] for i in rest],
            s=14 if len(rest) < 1000 else 8,
            color="#4C72B0",
            alpha=0.65 if len(rest) < 1000 else 0.35,
            linewidths=0,
            label="trial",
        )
        fx, fy = [costs[i] for i in front], [values[i] for i in front]
        ax.step(fx, fy, where="post", color="#C44E52", linewidth=1.5, alpha=0.8)
        ax.scatter(fx, fy, s=28, color="#C44E52", zorder=3, label=f"Pareto front ({len(front)})")
        for i, text in (labels or {}).items():
            ax.annotate(text, (costs[i], values[i]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        lo, hi = min(costs), max(costs)
        if target is not None:
            lo, hi = min(lo, target), max(hi, target)
            ax.axvline(target, color="#8172B2", linestyle="--", linewidth=1.2, label="cost target")
            if iso_value is not None:
                reward, w_in, w_over, label = iso_value
                span = [lo * (hi / lo) ** (k / 60) for k in range(61)] if hi > lo else [lo]
                ys = [reward / (c / target) ** (w_in if c <= target else w_over) for c in span]
                ax.plot(span, ys, color="#8172B2", linewidth=1.0, alpha=0.8, label=label)
                top = max(values) if values else 1.0
                ax.set_ylim(bottom=min(0.0, min(values)), top=top * 1.15 if top > 0 else 1.0)
        if lo > 0 and hi / lo > 20:  # costs over more than an order of magnitude
            ax.set_xscale("log")
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no completed trial yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path, fmt)
    plt.close(fig)
    return path


def plot_series(
    panels: list[tuple[str, list[tuple[str, list[float], list[float], str]]]],
    path: str | IO[bytes],
    *,
    xlabel: str,
    title: str,
    fmt: str = "png",
) -> str | IO:
    """Panels of lines over a shared x axis (controller statistics over trials).

    Args:
      panels: ``(y label, [(line label, xs, ys, style), ...])`` per panel;
        style ``"line"`` or ``"points"`` (faint dots, e.g. one per proposal).
      path: a file name or an open binary file.
      xlabel, title: the texts.
      fmt: the image format.

    Returns:
      ``path``.
    """
    plt = pyplot()
    n = max(1, len(panels))
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.2 + 2.2 * n), dpi=110, sharex=True, squeeze=False)
    colours = ["#4C72B0", "#C44E52", "#55A868", "#8172B2"]
    for ax, (ylabel, lines) in zip(axes[:, 0], panels):
        for k, (label, xs, ys, style) in enumerate(lines):
            colour = colours[k % len(colours)]
            if style == "points":
                dense = len(xs) >= 1000
                ax.scatter(
                    xs, ys, s=6 if dense else 14, color=colour, alpha=0.25 if dense else 0.55, linewidths=0, label=label
                )
            else:
                ax.plot(xs, ys, color=colour, linewidth=1.6, label=label)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel(xlabel)
    axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path, fmt)
    plt.close(fig)
    return path

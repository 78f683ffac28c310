"""The pictures of a proxy check: proxy against reference AP, and the proxy's learning curves."""

from __future__ import annotations

from typing import Any

from nas.plots import pyplot


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def plot_proxy_vs_reference(result: dict[str, Any], path: str) -> str:
    """Each architecture's mean proxy AP against its mean reference AP, with one std over seeds as error bars."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    rows = [a for a in result["archs"] if a["proxy"]["mean"] is not None and a["reference"]["mean"] is not None]
    for a in rows:
        ax.errorbar(
            a["proxy"]["mean"],
            a["reference"]["mean"],
            xerr=a["proxy"]["std"] or 0.0,
            yerr=a["reference"]["std"] or 0.0,
            fmt="o",
            markersize=5,
            capsize=3,
            color="#4C72B0" if a["source"].startswith(("random", "file", "search")) else "#C44E52",
        )
        ax.annotate(a["label"], (a["proxy"]["mean"], a["reference"]["mean"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")  # fmt: skip
    c = result["correlation"]
    rho, tau = c["spearman"], c["kendall"]
    ax.set_title(
        f"{result['experiment']}: {len(rows)} archs x {result['seeds']} seeds\n"
        f"Spearman {_fmt(rho['value'])} [{_fmt(rho['low'])}, {_fmt(rho['high'])}], "
        f"Kendall {_fmt(tau['value'])} [{_fmt(tau['low'])}, {_fmt(tau['high'])}] ({c['confidence']:.0%} bootstrap)",
        fontsize=9,
    )
    ax.set_xlabel("proxy AP (mean over seeds, bars: std)")
    overrides = ", ".join(f"{k}={v}" for k, v in result["reference_overrides"].items())
    ax.set_ylabel(f"reference AP ({overrides})", fontsize=8)
    ax.grid(alpha=0.3)
    if not rows:
        ax.text(
            0.5, 0.5, "no architecture with both recipes done yet", ha="center", va="center", transform=ax.transAxes
        )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_learning_curves(result: dict[str, Any], path: str) -> str:
    """The proxy's AP after each epoch per architecture (mean over seeds), and its rank agreement per epoch."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=110)
    for a in result["archs"]:
        curve = a["proxy_by_epoch"]
        if curve:
            epochs = sorted(curve, key=int)
            left.plot([int(e) for e in epochs], [curve[e] for e in epochs], marker=".", linewidth=1, label=a["label"])
    left.set_xlabel("epoch")
    left.set_ylabel("proxy AP (mean over seeds)")
    left.set_title("learning curves", fontsize=9)
    left.grid(alpha=0.3)
    if len(result["archs"]) <= 14 and any(a["proxy_by_epoch"] for a in result["archs"]):
        left.legend(fontsize=6)
    rows = result["epochs"]
    if rows:
        xs = [r["epoch"] for r in rows]
        for key, label in (
            ("spearman_with_final_proxy", "vs final proxy AP"),
            ("spearman_with_reference", "vs reference AP"),
        ):
            right.plot(xs, [r[key] if r[key] is not None else float("nan") for r in rows], marker="o", label=label)
        right.legend(fontsize=8)
    right.set_ylim(-1.05, 1.05)
    right.axhline(0, color="black", linewidth=0.5)
    right.set_xlabel("epoch")
    right.set_ylabel("Spearman's rho of the AP after the epoch")
    right.set_title("is a shorter proxy as good?", fontsize=9)
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

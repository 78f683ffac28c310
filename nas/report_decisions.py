"""What the controller learned, for the search report, and what reports of one search share (``ReportCache``).

An algorithm with a policy (``Controller.sample_policy``: REINFORCE, PPO) is
asked for sequences drawn from its initial policy (a fresh controller of the
same config and seed) and from its current one (the live controller in a
running search, else the newest snapshot); an algorithm without one (random
search, evolution) is described by its proposals: the first ones against the
latest ones. ``nas.decision_stats`` turns either into heatmaps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nas.decision_stats import Heatmap, decision_heatmaps
from nas.report_data import figure
from nas.trial_store import TrialStore

# Sequences drawn from a policy for its heatmaps: a share's standard error is at most 4.4 points.
POLICY_SAMPLES = 128
# Proposals compared (first and latest) when the algorithm has no policy to draw from.
PROPOSAL_WINDOW = 200


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
            self.diagrams[key] = figure(lambda buf, fmt: plot_architecture(arch, buf, caption, fmt=fmt), "svg")
        return self.diagrams[key]


def decision_views(
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

"""Multi-fidelity search (``search.fidelity=asha``): rungs, promotions, and the reward of a stopped trial.

Asynchronous successive halving (ASHA; Li et al., MLSys 2020) trains a trial
to the first rung (``ExperimentConfig.fidelity_rungs``, in epochs) and
evaluates it there. Its result is compared, the moment it arrives, with the
results recorded at that rung so far (the stopping form of ASHA, as Ray
Tune's ``ASHAScheduler``): it is promoted unless it falls below their
``1 - 1/reduction_factor`` quantile, so about the top third goes on (all of
the first few: no rung waits to fill). A promoted trial continues in its own
directory from the checkpoint of the rung (the schedule is always the whole
run's: ``trainer.stop_at_epoch``); a trial not promoted stops there and frees
its worker.

A policy-gradient controller needs a reward for every proposal. A trial that
reached the last rung gets the reward of its metrics there, as in a
full-fidelity search. A stopped one gets, by ``reward.low_fidelity``:

- ``calibrated`` (the default, chosen on ``bench/bench_asha.py``): its metric
  at the rung mapped onto the last rung's scale by an isotonic (monotone)
  regression of the last rung's metric on the rung's, fitted on the trials
  that finished both (``scipy.optimize.isotonic_regression``), linear in
  between; below the lowest fitted point the map is proportional (through
  0: a trial that learned nothing is not lifted to the worst promoted
  trial's level, and the order among stopped trials is kept). Until
  ``MIN_CALIBRATION_PAIRS`` such trials exist the metric is used raw, and
  the log says so (``calibrated: false``).
- ``raw``: its metric at the rung as it is (a smaller number than a final one).
- ``skip``: no reward; the controller is told the proposal failed, which its
  ``failure_policy`` handles (``skip``: it learns nothing from it).

Everything here is computed from the trial log in its order, so a resumed
search decides and rewards exactly as the uninterrupted one did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

MIN_CALIBRATION_PAIRS = 5


@dataclasses.dataclass(frozen=True)
class RungPlan:
    """The rungs of a search and its reduction factor."""

    epochs: tuple[float, ...]
    reduction_factor: float = 3.0

    @property
    def last(self) -> int:
        return len(self.epochs) - 1

    @classmethod
    def of(cls, config: Any) -> RungPlan | None:
        """The plan of an experiment config (``search.fidelity=asha``), else None."""
        if config.search.fidelity != "asha":
            return None
        return cls(tuple(config.fidelity_rungs()), float(config.search.reduction_factor))


def promoted(value: float, earlier: Iterable[float], reduction_factor: float) -> bool:
    """Whether a result at a rung goes on: not below the ``1 - 1/reduction_factor`` quantile of the earlier ones.

    The first result at a rung is always promoted (there is nothing to compare with).
    """
    earlier = list(earlier)
    if not earlier:
        return True
    cutoff = float(np.percentile(earlier, 100.0 * (1.0 - 1.0 / reduction_factor)))
    return value >= cutoff


def rung_results(trials: Iterable[Any], rung: int, key: str = "reward") -> list[float]:
    """The results (``reward`` or ``metric``) recorded at ``rung`` so far, in the log's order."""
    found = []
    for trial in trials:
        for entry in trial.rungs:
            if entry["rung"] == rung and entry.get(key) is not None:
                found.append((entry["seq"], float(entry[key])))
    return [value for _, value in sorted(found)]


def calibration_pairs(trials: Iterable[Any], rung: int, last: int) -> list[tuple[float, float]]:
    """(metric at ``rung``, metric at the last rung) of the trials that finished both."""
    pairs = []
    for trial in trials:
        by_rung = {e["rung"]: e for e in trial.rungs}
        low, high = by_rung.get(rung), by_rung.get(last)
        if low is not None and high is not None and low.get("metric") is not None and high.get("metric") is not None:
            pairs.append((float(low["metric"]), float(high["metric"])))
    return pairs


def calibrate(value: float, pairs: list[tuple[float, float]]) -> float | None:
    """``value`` (a metric at a lower rung) on the last rung's scale; None with fewer than ``MIN_CALIBRATION_PAIRS``.

    An isotonic regression of the last rung's metric on the lower rung's
    (equal lower-rung values averaged first), interpolated linearly between
    its points, constant above the highest and proportional below the lowest.
    """
    if len(pairs) < MIN_CALIBRATION_PAIRS:
        return None
    from scipy.optimize import isotonic_regression

    xs = np.array([p[0] for p in pairs])
    ys = np.array([p[1] for p in pairs])
    unique, index = np.unique(xs, return_inverse=True)
    weights = np.bincount(index).astype(float)
    means = np.bincount(index, weights=ys) / weights
    fit = isotonic_regression(means, weights=weights, increasing=True).x
    if value <= unique[0]:
        return float(fit[0] * value / unique[0]) if unique[0] > 0 else float(fit[0])
    return float(np.interp(value, unique, fit))


def epochs_spent(trial: Any, plan: RungPlan) -> float:
    """Training epochs a trial cost: up to the highest rung it was evaluated at (0 when its result was reused)."""
    if trial.reused_from is not None or not trial.rungs:
        return 0.0
    return plan.epochs[max(e["rung"] for e in trial.rungs)]


def summary(store: Any, plan: RungPlan) -> dict[str, Any]:
    """What ``status``, ``plot`` and the report show of a multi-fidelity search.

    Returns:
      ``rungs``: per rung its epochs, trials evaluated there, promoted and
      stopped there; ``epochs_spent`` (trained, up to each trial's highest
      rung), ``epochs_full`` (what a full-fidelity search of the same
      proposals would train: every trained trial to the last rung), their
      ratio ``saving``; ``rewards`` by source (final, calibrated, raw, skip).
    """
    trials = [t for t in store.trials.values() if t.reused_from is None]
    rows = []
    for index, epochs in enumerate(plan.epochs):
        entries = [e for t in trials for e in t.rungs if e["rung"] == index]
        rows.append(
            {
                "rung": index,
                "epochs": epochs,
                "evaluated": len(entries),
                "promoted": sum(1 for e in entries if e["decision"] == "promoted"),
                "stopped": sum(1 for e in entries if e["decision"] == "stopped"),
            }
        )
    spent = sum(epochs_spent(t, plan) for t in trials)
    full = plan.epochs[-1] * sum(1 for t in trials if t.rungs)
    sources: dict[str, int] = {}
    for t in store.trials.values():
        source = (t.fidelity or {}).get("reward_source")
        if source:
            sources[source] = sources.get(source, 0) + 1
    return {
        "rungs": rows,
        "reduction_factor": plan.reduction_factor,
        "epochs_spent": spent,
        "epochs_full": full,
        "saving": full / spent if spent else None,
        "rewards": sources,
    }


def summary_lines(info: dict[str, Any]) -> list[str]:
    """``summary`` as text lines (``nas-search status``)."""
    lines = [f"multi-fidelity (ASHA, reduction factor {info['reduction_factor']:g}):"]
    for row in info["rungs"]:
        lines.append(
            f"  rung {row['rung']} ({row['epochs']:g} epochs): {row['evaluated']} evaluated, "
            f"{row['promoted']} promoted, {row['stopped']} stopped"
        )
    saving = f" ({info['saving']:.2f}x fewer)" if info["saving"] else ""
    lines.append(
        f"  epochs trained: {info['epochs_spent']:g}, against {info['epochs_full']:g} for the same proposals "
        f"at full fidelity{saving}"
    )
    if info["rewards"]:
        lines.append("  rewards: " + ", ".join(f"{n} {k}" for k, n in sorted(info["rewards"].items())))
    return lines


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What becomes of a trial's result at a rung: promoted (``record``: the ``rung`` record's fields), or
    finished with ``reward`` (None with ``skip``) and ``fidelity`` (its ``completed`` record's field)."""

    promote: bool
    record: dict[str, Any] | None = None
    reward: float | None = None
    fidelity: dict[str, Any] | None = None


class Asha:
    """The multi-fidelity side of the search loop: which rung a trial runs to, and what its result means.

    Args:
      plan: the rungs and the reduction factor.
      store: the trial log (every decision reads the results recorded in it).
      reward_fn: ``fn(metrics, architecture) -> reward``, the search's.
      metric: the metric the reward is computed from (``reward.metric``), the one calibrated.
      low_fidelity: ``reward.low_fidelity``.
    """

    def __init__(self, plan: RungPlan, store: Any, reward_fn: Any, metric: str, low_fidelity: str):
        self.plan, self.store, self.reward_fn = plan, store, reward_fn
        self.metric, self.low_fidelity = metric, low_fidelity

    @classmethod
    def of(cls, config: Any, store: Any, reward_fn: Any) -> Asha | None:
        plan = RungPlan.of(config)
        if plan is None:
            return None
        return cls(plan, store, reward_fn, config.reward.metric, config.reward.low_fidelity)

    def target(self, trial: Any) -> tuple[float, bool]:
        """(epochs to train to, whether that is the last rung) for the trial's next attempt."""
        rung = min(trial.rung, self.plan.last)
        return self.plan.epochs[rung], rung == self.plan.last

    def judge(self, trial: Any, metrics: dict[str, Any], reward: float, architecture: Any) -> Verdict:
        """Promotes the trial's result at its current rung, or finishes the trial with its reward."""
        rung = min(trial.rung, self.plan.last)
        value = metrics.get(self.metric)
        value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        here = {"rung": rung, "epochs": self.plan.epochs[rung], "metric": value}
        if rung == self.plan.last:
            return Verdict(False, reward=reward, fidelity={**here, "raw_reward": reward, "decision": "final",
                                                           "reward_source": "final", "calibrated": False})  # fmt: skip
        earlier = rung_results(self.store.trials.values(), rung)
        if promoted(reward, earlier, self.plan.reduction_factor):
            return Verdict(True, record={**here, "metrics": metrics, "reward": reward, "decision": "promoted"})
        fidelity = {**here, "raw_reward": reward, "decision": "stopped", "reward_source": self.low_fidelity}
        if self.low_fidelity == "skip":
            return Verdict(False, reward=None, fidelity={**fidelity, "calibrated": False})
        if self.low_fidelity == "raw" or value is None:
            return Verdict(False, reward=reward, fidelity={**fidelity, "reward_source": "raw", "calibrated": False})
        pairs = calibration_pairs(self.store.trials.values(), rung, self.plan.last)
        mapped = calibrate(value, pairs)
        fidelity.update(calibration_pairs=len(pairs), calibrated=mapped is not None)
        if mapped is None:  # too few trials finished both rungs yet
            return Verdict(False, reward=reward, fidelity={**fidelity, "reward_source": "raw"})
        calibrated = float(self.reward_fn({**metrics, self.metric: mapped}, architecture))
        return Verdict(False, reward=calibrated, fidelity={**fidelity, "calibrated_metric": mapped})


def skip_message(fidelity: dict[str, Any]) -> str:
    """The failure the controller is told of a trial stopped at a rung under ``reward.low_fidelity=skip``."""
    return f"stopped at rung {fidelity.get('rung')} ({fidelity.get('epochs')} epochs); reward.low_fidelity=skip"


def reused_fidelity(fidelity: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a reused result says of its fidelity: the source's decision and reward, not its rungs (not trained)."""
    if not fidelity:
        return None
    return {k: fidelity[k] for k in ("decision", "reward_source", "calibrated") if k in fidelity}

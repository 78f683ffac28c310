"""How a search runs: trials, slots, resources, retries, seeds."""

from __future__ import annotations

import dataclasses
import math

# Keys that may differ when a search is continued: they change how it runs,
# not what it computes. A trial's time limit is one: raising it after trials
# were killed for running long re-runs nothing already recorded, it only
# lets later attempts run longer.
# How often the HTML report is refreshed changes nothing the search computes either.
RUNTIME_KEYS = (
    "search.max_trials",
    "search.max_concurrent",
    "search.executor",
    "search.trial_timeout_s",
    "search.report_every",
)

FIDELITIES = ("full", "asha")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """The search section of an experiment.

    Attributes:
      max_trials: trials to run in all (proposals, including reused and failed).
      max_concurrent: trials at once; 0 = as many as the resources allow.
      executor: ``"ray"`` (default) or ``"local"`` (in this process, one at a time).
      trial_cpus: CPUs reserved per trial.
      trial_gpus: GPUs per trial; -1 = one where the cluster has GPUs, else none.
      max_attempts: attempts per trial before it is recorded as failed.
      reuse_results: an architecture proposed again reuses the recorded result.
      seed: seeds the controller and every trial.
      evaluator: ``"proxy"`` (train the proxy RetinaNet) or ``"module:function"``.
      fresh_worker_per_trial: a new worker process per trial (TensorFlow keeps
        GPU memory until its process ends).
      snapshot_every: write a controller snapshot every this many results
        (and at exit). Snapshots only shorten the replay of the trial log on
        resume; correctness does not depend on them.
      trial_timeout_s: seconds an attempt may run before its worker process
        is killed and the attempt counts as failed (``"timeout"``; retried up
        to ``max_attempts``); 0 = no limit, the default here because only an
        experiment knows how long its trials take. A hung trial (a deadlocked
        data loader, a wedged GPU) otherwise holds its worker and its GPU for
        the rest of the search, so each experiment sets it well above its
        expected trial time. Enforced by the Ray executor only: the local
        executor runs trials in this process and cannot kill one.
      fidelity: ``"full"`` (every trial trains for the whole schedule) or
        ``"asha"`` (asynchronous successive halving, ``nas.fidelity``: a trial
        is evaluated at each of ``rungs`` and continues from its checkpoint
        only when its result is in the top ``1/reduction_factor`` of the
        results recorded at that rung so far; the others stop there and get a
        low-fidelity reward, ``reward.low_fidelity``).
      rungs: with ``asha``, the epochs at which a trial is evaluated,
        ascending; the last is the whole schedule (``trainer.epochs``).
        Empty: 1/10, 1/2 and all of ``trainer.epochs`` (0.5, 2.5 and 5
        epochs for the COCO proxy).
      reduction_factor: with ``asha``, 1 in this many results at a rung is
        promoted (3: the top third).
      report_every: refresh ``WORKDIR/report.html`` (``nas.report``, the
        file ``nas-search report`` writes) every this many results, and when
        the run ends; 0 = never. A report that cannot be written is a
        warning, never the end of the search.
    """

    max_trials: int = 100
    max_concurrent: int = 0
    executor: str = "ray"
    trial_cpus: float = 1.0
    trial_gpus: float = -1.0
    max_attempts: int = 2
    reuse_results: bool = True
    seed: int = 0
    evaluator: str = "proxy"
    fresh_worker_per_trial: bool = True
    snapshot_every: int = 10
    trial_timeout_s: float = 0.0
    report_every: int = 10
    fidelity: str = "full"
    rungs: tuple[float, ...] = ()
    reduction_factor: float = 3.0

    def validate(self) -> None:
        """Raises ValueError naming the first bad field."""
        if self.max_trials < 1:
            raise ValueError(f"search.max_trials is {self.max_trials}; must be >= 1")
        if self.max_concurrent < 0:
            raise ValueError(f"search.max_concurrent is {self.max_concurrent}; must be >= 0 (0 = automatic)")
        if self.executor not in ("ray", "local"):
            raise ValueError(f"search.executor {self.executor!r} is unknown; allowed ray, local")
        if self.trial_cpus < 0:
            raise ValueError(f"search.trial_cpus is {self.trial_cpus}; must be >= 0")
        if self.trial_gpus < 0 and self.trial_gpus != -1:
            raise ValueError(f"search.trial_gpus is {self.trial_gpus}; must be >= 0, or -1 for automatic")
        if self.max_attempts < 1:
            raise ValueError(f"search.max_attempts is {self.max_attempts}; must be >= 1")
        if self.snapshot_every < 1:
            raise ValueError(f"search.snapshot_every is {self.snapshot_every}; must be >= 1")
        if self.report_every < 0:
            raise ValueError(f"search.report_every is {self.report_every}; must be >= 0 (0 = no report)")
        if not math.isfinite(self.trial_timeout_s) or self.trial_timeout_s < 0:
            raise ValueError(f"search.trial_timeout_s is {self.trial_timeout_s}; must be >= 0 seconds (0 = no limit)")
        if self.fidelity not in FIDELITIES:
            raise ValueError(f"search.fidelity {self.fidelity!r} is unknown; allowed {', '.join(FIDELITIES)}")
        rungs = self.rungs
        if any(not (math.isfinite(r) and r > 0) for r in rungs) or any(a >= b for a, b in zip(rungs, rungs[1:])):
            raise ValueError(f"search.rungs is {list(rungs)}; must be ascending epochs, each > 0")
        if not (math.isfinite(self.reduction_factor) and self.reduction_factor > 1):
            raise ValueError(f"search.reduction_factor is {self.reduction_factor}; must be > 1")
        if self.evaluator != "proxy" and (":" not in self.evaluator or self.evaluator.startswith(":")):
            raise ValueError(f"search.evaluator {self.evaluator!r} must be 'proxy' or module:function")

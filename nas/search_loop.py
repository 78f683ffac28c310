"""The asynchronous search loop: propose when a slot frees, learn as results arrive.

Every step is written to the trial log before the search acts on it, and the
controller is snapshotted now and then. On a restart the latest good snapshot
is restored and the log records after it are replayed into the controller
(proposals are re-drawn and checked against the log, results fed back), so
the controller is exactly where it was; trials that were in flight run again
with the same architecture and seed. Nothing completed is lost or redone.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from controller.base import Controller, Proposal
from experiments.search_config import SearchConfig
from nas.executors import Outcome, TrialTask
from nas.fidelity import Asha, reused_fidelity
from nas.search_replay import feed_back, restore_controller
from nas.trial_store import COMPLETED, FAILED, Trial, TrialStore
from nas.user_errors import one_line
from nas.workdir import Workdir
from search_space import Architecture, DecisionEncoding, architecture_to_dict

RewardFn = Callable[[dict[str, Any], Architecture], float]


class Executor(Protocol):
    """Where trials run (``nas.executors.LocalExecutor``, ``RayExecutor``)."""

    @property
    def capacity(self) -> int:
        """Trials it runs at once."""

    @property
    def running(self) -> int:
        """Trials submitted and not yet returned by ``wait``."""

    def submit(self, task: TrialTask) -> None:
        """Starts one attempt of a trial."""

    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes that arrived within ``timeout`` seconds (possibly none)."""


class Reporter(Protocol):
    """The live display of a search (``nas.progress.Reporter``)."""

    def update(self, store: TrialStore, max_trials: int, running: int) -> None:
        """Called after every batch of outcomes."""

    def finish(self, store: TrialStore, max_trials: int, stopped: bool, failed: bool = False) -> None:
        """Called once when the loop ends."""


class EventWriter(Protocol):
    """Per-trial scalars for TensorBoard (``nas.events.SearchEvents``)."""

    def trial_finished(self, store: TrialStore, trial: Trial, controller_stats: dict[str, Any]) -> None:
        """Called when a trial completes or fails for good."""


class ReportWriter(Protocol):
    """The HTML report a running search refreshes (``nas.report.PeriodicReport``)."""

    def result_recorded(self, controller: Controller) -> str | None:
        """Called after every result; writes the report when one is due."""

    def write(self, controller: Controller) -> str:
        """Writes the report now (when the run ends)."""


def trial_seed(search_seed: int, trial_id: int) -> int:
    """The seed of one trial: fixed by the search seed and the trial id."""
    return (search_seed * 1_000_003 + trial_id * 7_919 + 17) % (2**31 - 1)


# A trial whose result is not finite is failed at once, not retried: a retry runs the same
# architecture with the same seed, which on CPU (deterministic) repeats the same NaN. Crashes,
# dead workers, running out of memory and time limits are retried up to search.max_attempts.
NOT_RETRIED_ERRORS = ("NonFiniteLossError:",)


class SearchLoop:
    """Drives one search in one workdir (the caller holds the workdir's lock).

    ``restore`` first (it reads only), then ``run``.
    """

    def __init__(
        self,
        *,
        workdir: Workdir,
        store: TrialStore,
        controller: Controller,
        encoding: DecisionEncoding,
        search_config: SearchConfig,
        reward_fn: RewardFn,
        executor: Executor | None = None,
        reporter: Reporter | None = None,
        events: EventWriter | None = None,
        report: ReportWriter | None = None,
        asha: Asha | None = None,
    ):
        self.workdir = workdir
        self.asha = asha  # multi-fidelity (search.fidelity=asha); None: every trial trains to the end
        self.store = store
        self.controller = controller
        self.encoding = encoding
        self.config = search_config
        self.executor = executor
        self.reward_fn = reward_fn
        self.reporter = reporter
        self.events = events
        self.report = report
        self._report_problem: str | None = None
        self.proposals: dict[int, Proposal] = {}
        self._queue: collections.deque[int] = collections.deque()
        self._leaders: dict[str, int] = {}  # fingerprint -> running trial id
        self._followers: dict[int, list[int]] = collections.defaultdict(list)
        self._since_snapshot = 0
        self._stop = False
        self._restored = False
        self._set_aside: list[tuple[str, str]] = []  # (snapshot path, suffix), done when the run starts
        self.warnings: list[str] = []

    def attach(
        self,
        *,
        executor: Executor,
        events: EventWriter | None = None,
        reporter: Reporter | None = None,
        report: ReportWriter | None = None,
    ) -> None:
        """Gives the loop where trials run and where it reports (after ``restore``: building them may write)."""
        self.executor = executor
        self.events = events
        self.reporter = reporter
        self.report = report

    # ----- restore ---------------------------------------------------------------

    def restore(self, rebuild: bool = False) -> list[str]:
        """Brings the controller to the state the trial log describes; writes nothing.

        ``nas.search_replay.restore_controller``: the newest readable snapshot
        restored and the log records after it replayed, or with ``rebuild`` the
        whole log replayed into a fresh controller. Snapshots it skips or
        replaces are set aside when the search runs.

        Returns:
          Warnings for the user (snapshots skipped, hyperparameters filled in).

        Raises:
          ReplayError: a snapshot is refused, or the re-drawn proposals differ
            from the log; the message says what to do.
        """
        self._set_aside, warnings = restore_controller(
            workdir=self.workdir,
            store=self.store,
            controller=self.controller,
            encoding=self.encoding,
            proposals=self.proposals,
            rebuild=rebuild,
        )
        self._restored = True
        self.warnings = warnings
        return warnings

    def _feedback(self, tid: int, reward: float | None = None, failure: str | None = None, fidelity=None) -> None:
        feed_back(self.controller, self.proposals[tid], reward=reward, failure=failure, fidelity=fidelity)

    # ----- the loop ----------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """Whether a stop was requested (Ctrl-C, SIGTERM)."""
        return self._stop

    def request_stop(self, *_args) -> None:
        """Stops proposing; running trials are abandoned and re-run on resume."""
        self._stop = True

    def run(self, max_trials: int) -> None:
        """Runs until ``max_trials`` trials have finished (or a stop is requested)."""
        if not self._restored:
            self.restore()
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        finished = False
        try:
            rebuilt = any(suffix == ".replaced" for _, suffix in self._set_aside)
            for path, suffix in self._set_aside:
                self.workdir.set_aside(path, suffix)
            self._set_aside = []
            if rebuilt:
                self.snapshot()  # the rebuilt controller, so that the next resume starts from it
            self.store.append("run", max_trials=max_trials, pid=os.getpid())
            for trial in self.store.in_flight():  # run again (or reuse a result recorded since)
                self._route(trial)
            while not self._stop:
                self._fill_slots(max_trials)
                if self.executor.running == 0 and not self._queue:
                    break
                for outcome in self.executor.wait(timeout=0.5):
                    self._handle(outcome)
                if self.reporter:
                    self.reporter.update(self.store, max_trials, self.executor.running)
            finished = True
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if finished:
                self.snapshot()
                if self.report is not None:
                    self._refresh_report(self.report.write)
            # Leaving on an error (a full disk, a corrupt record...) writes no snapshot: the controller
            # may be ahead of the log (a proposal drawn whose record could not be appended), and a
            # snapshot only shortens the next replay.
            if self.reporter:
                # On an error the error is the last word: no "search finished" line before it.
                self.reporter.finish(self.store, max_trials, stopped=self._stop, failed=not finished)

    def _fill_slots(self, max_trials: int) -> None:
        capacity = self.executor.capacity
        while self._queue and self.executor.running < capacity:
            self._dispatch(self.store.trials[self._queue.popleft()])
        while not self._queue and self.executor.running < capacity and self.store.next_trial_id() < max_trials:
            if self._stop:
                return
            self._propose()

    def _propose(self) -> None:
        proposal = self.controller.propose()
        arch = proposal.architecture
        tid = self.store.next_trial_id()
        self.store.append(
            "proposed",
            trial_id=tid,
            proposal=proposal.to_dict(),
            architecture=architecture_to_dict(arch),
            fingerprint=arch.fingerprint(),
            seed=trial_seed(self.config.seed, tid),
        )
        self.proposals[tid] = proposal
        self._route(self.store.trials[tid])

    def _route(self, trial: Trial) -> None:
        """Reuses a recorded result, follows an identical running trial, or queues the trial."""
        if self.config.reuse_results:
            source = self.store.by_fingerprint(trial.fingerprint)
            if source is not None:
                fidelity = reused_fidelity(source.fidelity)
                self._complete(
                    trial.trial_id, source.metrics or {}, source.reward, reused_from=source.trial_id, fidelity=fidelity
                )
                return
            leader = self._leaders.get(trial.fingerprint)
            if leader is not None and leader != trial.trial_id:
                self._followers[leader].append(trial.trial_id)
                return
            self._leaders[trial.fingerprint] = trial.trial_id
        self._queue.append(trial.trial_id)

    def _dispatch(self, trial: Trial) -> None:
        attempt = trial.attempts + 1
        self.store.append("started", durable=False, trial_id=trial.trial_id, attempt=attempt)
        epochs, final_rung = self.asha.target(trial) if self.asha is not None else (None, True)
        task = TrialTask(
            trial_id=trial.trial_id,
            attempt=attempt,
            architecture=trial.architecture,
            seed=trial.seed,
            trial_dir=self.workdir.trial_dir(trial.trial_id),
            epochs=epochs,
            final_rung=final_rung,
        )
        self.executor.submit(task)

    def _handle(self, outcome: Outcome) -> None:
        tid = outcome.task.trial_id
        if outcome.kind == "ok":
            result = outcome.result or {}
            metrics = result.get("metrics", {})
            try:  # a non-finite metric or reward fails the trial at once (see NOT_RETRIED_ERRORS)
                reward = float(self.reward_fn(metrics, self.proposals[tid].architecture))
                if reward != reward or reward in (float("inf"), float("-inf")):
                    raise ValueError(f"reward is {reward}")
            except Exception as e:  # noqa: BLE001 - recorded as the trial's failure
                self._fail(tid, f"reward: {type(e).__name__}: {e}")
                return
            worker, timings, fidelity = result.get("worker"), result.get("timings") or {}, None
            if self.asha is not None:
                verdict = self.asha.judge(self.store.trials[tid], metrics, reward, self.proposals[tid].architecture)
                if verdict.promote:  # recorded before it runs on: a resume never promotes it twice
                    self.store.append("rung", trial_id=tid, **verdict.record, worker=worker, timings=timings)
                    self._dispatch(self.store.trials[tid])
                    return
                reward, fidelity = verdict.reward, verdict.fidelity
            self._complete(tid, metrics, reward, worker=worker, timings=timings, fidelity=fidelity)
            return
        self._write_error(tid, outcome)
        if outcome.kind == "error" and (outcome.error or "").startswith(NOT_RETRIED_ERRORS):
            # The same architecture and seed would give the same non-finite result again.
            self._fail(tid, outcome.error)
            return
        # Attempts at the trial's current rung (all of them outside a multi-fidelity search).
        since = max((e["seq"] for e in self.store.trials[tid].rungs), default=-1)
        failed_attempts = sum(
            1 for r in self.store.records[since + 1 :] if r["event"] == "attempt_failed" and r.get("trial_id") == tid
        )
        if failed_attempts + 1 < self.config.max_attempts:
            self.store.append("attempt_failed", trial_id=tid, attempt=outcome.task.attempt, error=outcome.error)
            self._dispatch(self.store.trials[tid])
            return
        self._fail(tid, outcome.error or outcome.kind)

    def _complete(self, tid, metrics, reward, *, reused_from=None, worker=None, timings=None, fidelity=None) -> None:
        extra = {"fidelity": fidelity} if fidelity is not None else {}  # full-fidelity logs stay as they were
        self.store.append(
            "completed",
            trial_id=tid,
            metrics=metrics,
            reward=reward,
            reused_from=reused_from,
            worker=worker,
            timings=timings or {},
            **extra,
        )
        self._feedback(tid, reward=reward, fidelity=fidelity)
        self._after_result(tid)
        for follower in self._followers.pop(tid, []):
            self._complete(follower, metrics, reward, reused_from=tid, fidelity=reused_fidelity(fidelity))

    def _fail(self, tid: int, error: str) -> None:
        self.store.append("failed", trial_id=tid, error=error)
        self._feedback(tid, failure=error)
        self._after_result(tid)
        for follower in self._followers.pop(tid, []):
            self._fail(follower, f"identical to trial {tid}, which failed: {error}")

    def _after_result(self, tid: int) -> None:
        trial = self.store.trials[tid]
        if self._leaders.get(trial.fingerprint) == tid:
            del self._leaders[trial.fingerprint]
        if self.events is not None:
            self.events.trial_finished(self.store, trial, self.controller.stats())
        self._since_snapshot += 1
        if self._since_snapshot >= self.config.snapshot_every:
            self.snapshot()
        if self.report is not None:
            self._refresh_report(self.report.result_recorded)

    def _refresh_report(self, write: Callable[[Controller], Any]) -> None:
        """Writes the HTML report; a failure is a warning on stderr (once per message), never the search's end."""
        try:
            write(self.controller)
        except Exception as e:  # noqa: BLE001 - the report is a view; the search goes on without it
            problem = one_line(e)
            if problem != self._report_problem:
                print(f"warning: the search report was not written: {problem}", file=sys.stderr, flush=True)
            self._report_problem = problem
            return
        self._report_problem = None

    def snapshot(self) -> None:
        """Writes the controller's state as of the current end of the log."""
        self.workdir.write_snapshot(len(self.store.records), self.controller.get_state(), self.controller.stats())
        self._since_snapshot = 0

    def _write_error(self, tid: int, outcome: Outcome) -> None:
        path = os.path.join(self.workdir.trial_dir(tid), f"error_attempt{outcome.task.attempt}.txt")
        with open(path, "w") as f:
            f.write(f"{time.ctime()}: {outcome.kind}: {outcome.error}\n\n{outcome.details}\n")


def summarize(store: TrialStore) -> dict[str, int]:
    """Counts of trials by status."""
    counts = collections.Counter(t.status for t in store.trials.values())
    return {
        "completed": counts.get(COMPLETED, 0),
        "failed": counts.get(FAILED, 0),
        "running": sum(counts.get(s, 0) for s in ("pending", "running")),
        "reused": sum(1 for t in store.trials.values() if t.reused_from is not None),
    }

"""A proxy check: does the search's reward rank architectures as longer training does, and how noisy is it?

A set of architectures (the presets and random members of the space, given
files, or the best of a finished search and as many random ones) is trained
with S seeds under two recipes: the experiment's own (the *proxy*, the
reward of a search, evaluated after every epoch too) and a *reference*
given as overrides of it (by default the same experiment trained 4x
longer). Every (architecture, recipe, seed) is one trial, run on the
search's executors (``nas.executors``: a local Ray by default) and recorded
in a trial log (``nas.trial_store``) exactly as a search records its trials,
so a check killed at any moment (kill -9 included) continues with the same
command, nothing completed runs again, and failed attempts are retried up to
``search.max_attempts``.

A check's directory::

    CHECK/
      check.json          what is checked (architectures, seeds, both recipes' configs), its id and version
      trials.jsonl        the trial log: proposed / started / completed / attempt_failed / failed / run
      trials/NNNNNN/      one directory per trial (the evaluator's workdir, error reports)
      proxy_check.json    the result (written after every run, complete or not)
      plots/              proxy_vs_reference.png, learning_curves.png
      .lock               held by the process running the check

It holds no ``config.json``: search commands refuse it, and a check refuses a
search's directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from experiments.config import ExperimentConfig
from experiments.overrides import (
    apply_overrides,
    config_to_dict,
)
from nas.executors import Outcome, TrialTask
from nas.proxy_check_plan import SCHEMA_VERSION, CheckPlan, ProxyCheckError, fixed_plan
from nas.proxy_check_result import write_result
from nas.search_loop import NOT_RETRIED_ERRORS
from nas.trial_store import COMPLETED, FAILED, TrialStore
from nas.workdir import PROXY_CHECK_FILE, Workdir, atomic_write_json, read_json
from search_space import (
    architecture_to_dict,
)

# ----- running ---------------------------------------------------------------------------


def open_check_dir(path: str, plan: CheckPlan, *, create: bool) -> Workdir:
    """Checks that ``path`` is this check's directory (or a new one); creates it when ``create``.

    Raises:
      ProxyCheckError: a search's directory, another check, or a directory that holds other files.
    """
    wd = Workdir(path)
    if wd.exists() or os.path.exists(wd.log_path) and not wd.holds_proxy_check():
        raise ProxyCheckError(f"{wd.path} holds a search, not a proxy check; use another --workdir")
    if wd.holds_proxy_check():
        meta = read_json(wd.join(PROXY_CHECK_FILE), "the proxy check's plan")
        if (
            not isinstance(meta, dict)
            or meta.get("kind") != "proxy_check"
            or meta.get("schema_version") != SCHEMA_VERSION
        ):
            raise ProxyCheckError(f"{wd.join(PROXY_CHECK_FILE)}: not a proxy check of this version")
        old, new = fixed_plan(meta["plan"]), fixed_plan(plan.to_dict())
        differing = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if differing:
            shown = ", ".join(differing[:6]) + (" ..." if len(differing) > 6 else "")
            raise ProxyCheckError(
                f"{wd.path} holds a proxy check of other architectures, seeds or recipes (differing: {shown}); "
                "run the same command to continue it, or use another --workdir"
            )
    elif os.path.isdir(wd.path) and set(os.listdir(wd.path)) - {".lock"}:
        raise ProxyCheckError(f"{wd.path} is not empty and holds no proxy check; use a new --workdir")
    elif create:
        os.makedirs(wd.path, exist_ok=True)
        meta = {
            "kind": "proxy_check",
            "schema_version": SCHEMA_VERSION,
            "check_id": uuid.uuid4().hex[:12],
            "created": time.time(),
            "plan": plan.to_dict(),
        }
        atomic_write_json(wd.join(PROXY_CHECK_FILE), meta)
    return wd


class CheckRunner:
    """Runs the trials of one check on an executor, recording each step in the check's trial log."""

    def __init__(self, wd: Workdir, plan: CheckPlan, store: TrialStore, executor, report: Callable[[str], None]):
        self.wd, self.plan, self.store, self.executor, self.report = wd, plan, store, executor, report
        self.trials = plan.trials()
        self.config_dicts = {name: config_to_dict(c) for name, c in plan.configs.items()}
        self._queue: list[int] = []
        self._stop = False

    def request_stop(self, *_args) -> None:
        self._stop = True

    @property
    def stopped(self) -> bool:
        return self._stop

    def run(self) -> None:
        import signal

        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.store.append("run", max_trials=len(self.trials), pid=os.getpid(), resources=self.executor.resources)
            for tid, spec in enumerate(self.trials):
                trial = self.store.trials.get(tid)
                if trial is None:
                    arch = self.plan.archs[spec["arch"]].architecture
                    self.store.append(
                        "proposed",
                        trial_id=tid,
                        proposal=spec,
                        architecture=architecture_to_dict(arch),
                        fingerprint=arch.fingerprint(),
                        seed=spec["seed"],
                    )
                    self._queue.append(tid)
                elif trial.status not in (COMPLETED, FAILED):
                    self._queue.append(tid)  # in flight when the last run stopped: run again
            while not self._stop:
                while self._queue and self.executor.running < self.executor.capacity:
                    self._dispatch(self._queue.pop(0))
                if self.executor.running == 0:
                    break
                for outcome in self.executor.wait(timeout=0.5):
                    self._handle(outcome)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _dispatch(self, tid: int) -> None:
        trial = self.store.trials[tid]
        recipe = trial.proposal["recipe"]
        attempt = trial.attempts + 1
        self.store.append("started", durable=False, trial_id=tid, attempt=attempt)
        config = self.config_dicts[recipe]
        self.executor.submit(
            TrialTask(
                trial_id=tid,
                attempt=attempt,
                architecture=trial.architecture,
                seed=trial.seed,
                trial_dir=self.wd.trial_dir(tid),
                evaluator=config["search"]["evaluator"],
                experiment_config=config,
            )
        )

    def _handle(self, outcome: Outcome) -> None:
        tid = outcome.task.trial_id
        spec = self.trials[tid]
        label = f"{self.plan.archs[spec['arch']].label} {spec['recipe']} seed {spec['seed']}"
        metric = self.plan.configs[spec["recipe"]].reward.metric
        if outcome.kind == "ok":
            result = outcome.result or {}
            metrics = result.get("metrics", {})
            value = metrics.get(metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.store.append(
                    "completed",
                    trial_id=tid,
                    metrics=metrics,
                    reward=float(value),
                    reused_from=None,
                    worker=result.get("worker"),
                    timings=result.get("timings") or {},
                )
                self.report(f"trial {tid} ({label}): {metric} {value:.4f}")
                return
            outcome = dataclasses.replace(outcome, kind="error", error=f"metric {metric!r} is {value!r}, not a number")
            self._fail(tid, outcome, label)
            return
        self._write_error(tid, outcome)
        failed = sum(1 for r in self.store.records if r["event"] == "attempt_failed" and r.get("trial_id") == tid)
        retry = not (outcome.error or "").startswith(NOT_RETRIED_ERRORS)
        if retry and failed + 1 < self.plan.configs[spec["recipe"]].search.max_attempts:
            self.store.append("attempt_failed", trial_id=tid, attempt=outcome.task.attempt, error=outcome.error)
            self.report(f"trial {tid} ({label}): attempt {outcome.task.attempt} failed, retrying: {outcome.error}")
            self._dispatch(tid)
            return
        self._fail(tid, outcome, label)

    def _fail(self, tid: int, outcome: Outcome, label: str) -> None:
        self.store.append("failed", trial_id=tid, error=outcome.error or outcome.kind)
        self.report(f"trial {tid} ({label}): failed: {outcome.error or outcome.kind}")

    def _write_error(self, tid: int, outcome: Outcome) -> None:
        path = os.path.join(self.wd.trial_dir(tid), f"error_attempt{outcome.task.attempt}.txt")
        with open(path, "w") as f:
            f.write(f"{time.ctime()}: {outcome.kind}: {outcome.error}\n\n{outcome.details}\n")


def run_check(plan: CheckPlan, path: str, *, ray_address: str | None = None, quiet: bool = False) -> dict[str, Any]:
    """Runs (or continues) a check to its end, then writes its result and plots; returns the result.

    Raises:
      ProxyCheckError, WorkdirError, DataError, ExecutorError: with a message for the user.
    """
    from nas.search_runner import build_executor, check_data

    for config in plan.configs.values():
        if config.search.evaluator != "proxy":
            from nas.evaluators import load_evaluator

            load_evaluator(config.search.evaluator)  # a typo fails here, not in every trial
    wd = open_check_dir(path, plan, create=False)
    dir_existed, lock_existed = os.path.isdir(wd.path), os.path.exists(wd.join(".lock"))
    wd.lock()
    try:
        wd = open_check_dir(path, plan, create=False)  # again, under the lock
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the result's (--json)
            for config in plan.configs.values():
                check_data(config)
        executor = build_executor(_executor_config(plan), ray_address)
        try:
            open_check_dir(path, plan, create=True)
            say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
            with TrialStore(wd.log_path) as store:
                runner = CheckRunner(wd, plan, store, executor, say)
                done = sum(1 for t in store.trials.values() if t.status in (COMPLETED, FAILED))
                say(
                    f"proxy check in {wd.path}: {len(plan.archs)} architectures x {plan.seeds} seeds x 2 recipes = "
                    f"{len(runner.trials)} trials, {done} done, {executor.capacity} at a time "
                    "(Ctrl-C stops; the same command continues)"
                )
                runner.run()
                stopped = runner.stopped
        finally:
            executor.shutdown()
        result = write_result(wd, plan)
        result["stopped"] = stopped
        return result
    finally:
        wd.unlock()
        if not wd.holds_proxy_check():  # refused before the check was created: leave no trace of this attempt
            with contextlib.suppress(OSError):
                if not lock_existed:
                    os.remove(wd.join(".lock"))
                if not dir_existed:
                    os.rmdir(wd.path)


def _executor_config(plan: CheckPlan) -> ExperimentConfig:
    """The config the executor is built from: the proxy's, with the longest time limit of the two recipes."""
    limits = [c.search.trial_timeout_s for c in plan.configs.values()]
    limit = 0.0 if 0.0 in limits else max(limits)
    return apply_overrides(plan.configs["proxy"], {"search.trial_timeout_s": limit})

"""Where trials run: in this process (tests, debugging) or as Ray tasks.

Both executors take ``TrialTask``s and hand back ``Outcome``s as trials
finish; the search loop never knows which one it drives. The Ray executor
also kills an attempt that runs past ``search.trial_timeout_s`` (a hung trial
would hold its worker and its GPU for the rest of the search), and turns the
loss of the cluster's head into one error instead of Ray ending the process
a minute later.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import signal
import socket
import time
import traceback
import uuid
from typing import Any

from nas.evaluators import run_trial
from nas.ray_connect import ExecutorError, init_ray

__all__ = ["ExecutorError", "LocalExecutor", "Outcome", "RayExecutor", "TrialTask", "init_ray"]

# The namespace of the Ray key-value entries by which running attempts say where they run.
KV_NAMESPACE = b"spinenet_nas"


@dataclasses.dataclass(frozen=True)
class TrialTask:
    """One attempt of one trial.

    ``evaluator`` and ``experiment_config``, when given, replace the
    executor's own for this attempt (a proxy check runs two recipes on one
    executor); None uses the executor's. ``epochs`` and ``final_rung`` are
    the rung of a multi-fidelity search (``run_trial``).
    """

    trial_id: int
    attempt: int
    architecture: dict[str, Any]
    seed: int
    trial_dir: str
    evaluator: str | None = None
    experiment_config: dict[str, Any] | None = None
    epochs: float | None = None  # a multi-fidelity search's rung: train to this epoch (None: the whole schedule)
    final_rung: bool = True

    def evaluator_and_config(self, default: tuple[str, dict | None]) -> tuple[str, dict | None]:
        """The evaluator and config this attempt runs with: its own, else ``default`` (the executor's)."""
        evaluator, config = default
        return self.evaluator or evaluator, self.experiment_config if self.experiment_config is not None else config


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How an attempt ended.

    Attributes:
      task: the attempt.
      result: ``run_trial``'s return value when it succeeded.
      error: one-line error text when it failed.
      kind: ``"ok"``, ``"error"`` (the evaluator raised or returned junk),
        ``"worker_died"`` (the process running it died), ``"oom"`` or
        ``"timeout"`` (it ran past ``search.trial_timeout_s`` and its worker
        was killed).
      details: the traceback or Ray's report, for the trial directory.
    """

    task: TrialTask
    result: dict[str, Any] | None = None
    error: str | None = None
    kind: str = "ok"
    details: str = ""


def _one_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip().splitlines()
    return text[0][:500] if text else type(e).__name__


class LocalExecutor:
    """Runs trials one at a time in this process, when ``wait`` is called.

    ``search.trial_timeout_s`` is ignored here: a trial running in this
    process cannot be killed without killing the search. Tests and debugging
    use this executor; searches that need the limit run on Ray.
    """

    def __init__(self, evaluator: str, experiment_config: dict | None = None):
        self._args = (evaluator, experiment_config)
        self._queue: collections.deque[TrialTask] = collections.deque()
        self.resources = {"cpus": float(os.cpu_count() or 1), "gpus": 0.0}  # the driver's process: all of it

    @property
    def capacity(self) -> int:
        return 1

    @property
    def running(self) -> int:
        return len(self._queue)

    def submit(self, task: TrialTask) -> None:
        self._queue.append(task)

    def wait(self, timeout: float) -> list[Outcome]:
        if not self._queue:
            return []
        task = self._queue.popleft()
        evaluator, config = task.evaluator_and_config(self._args)
        try:
            result = run_trial(
                evaluator, task.architecture, task.seed, task.trial_dir, config, task.epochs, task.final_rung
            )
            return [Outcome(task, result=result)]
        except Exception as e:  # noqa: BLE001 - a trial's failure is recorded, never fatal
            return [Outcome(task, error=_one_line(e), kind="error", details=traceback.format_exc())]

    def shutdown(self) -> None:
        self._queue.clear()


def _run_attempt(marker: str, evaluator: str, architecture, seed, trial_dir, experiment_config, rung=(None, True)):
    """The Ray task of one attempt: says that it runs, and where, then runs the trial.

    The driver starts an attempt's clock when the marker appears, so a trial
    waiting for a free node is not counted as running, and after killing a
    worker on its own machine it checks by pid that the process is gone.
    """
    if marker:
        where = {"host": socket.gethostname(), "pid": os.getpid()}
        _kv("internal_kv_put", marker.encode(), json.dumps(where).encode(), True)
    return run_trial(evaluator, architecture, seed, trial_dir, experiment_config, *rung)


def _kv(method: str, *args: Any) -> Any:
    """One call on Ray's key-value store (in the GCS), bounded in time: the head may be gone. None on failure."""
    from ray.experimental import internal_kv

    try:
        return getattr(internal_kv.internal_kv_get_gcs_client(), method)(*args, namespace=KV_NAMESPACE, timeout=2.0)
    except Exception:  # noqa: BLE001 - a missing marker only delays or skips a time limit
        return None


@dataclasses.dataclass
class _Attempt:
    task: TrialTask
    marker: str  # its key in Ray's key-value store ("" without a time limit)
    started: float | None = None  # time.monotonic() of this process, when its marker was first seen
    killed: float | None = None
    worker: dict[str, Any] = dataclasses.field(default_factory=dict)


class _HeadWatch:
    """Notices that the cluster's head (its GCS) stopped answering.

    Without a GCS, Ray ends the driver process after
    ``RAY_gcs_rpc_server_reconnect_timeout_s`` (60 s), with a C++ log line;
    a GCS with fault tolerance may come back sooner. So the head counts as
    lost when its port has refused connections for a third of that (at
    most 20 s), and the search stops with one error before Ray ends it.
    """

    def __init__(self, gcs_address: str | None, shown_address: str):
        host, _, port = (gcs_address or "").rpartition(":")
        self._target = (host.strip("[]"), int(port)) if host and port.isdigit() else None
        self._shown = shown_address
        reconnect_s = float(os.environ.get("RAY_gcs_rpc_server_reconnect_timeout_s", "60"))
        self.grace_s = max(1.0, min(20.0, reconnect_s / 3))
        self.down_since: float | None = None
        self._checked = -1e9

    def ok(self, now: float, force: bool = False) -> bool:
        """Whether the head answers (checked every 2 s, or now if ``force``)."""
        if self._target is None or (self.down_since is None and not force and now - self._checked < 2.0):
            return self.down_since is None
        self._checked = now
        try:
            socket.create_connection(self._target, timeout=2.0).close()
        except OSError:
            self.down_since = now if self.down_since is None else self.down_since
            if now - self.down_since >= self.grace_s:
                raise ExecutorError(
                    f"lost the Ray cluster at {self._shown}: its head has not answered for {now - self.down_since:.0f} s; "
                    "the trials that were running are not recorded and run again when the search is resumed "
                    "(nas-search resume, with --ray_address of a running cluster)"
                ) from None
            return False
        self.down_since = None
        return True


class RayExecutor:
    """Runs each attempt as a Ray task.

    Args:
      evaluator: evaluator spec for ``run_trial``.
      experiment_config: the frozen config as a dict (for the proxy
        evaluator); its ``search.trial_timeout_s`` (0 or absent: no limit) is
        the time an attempt may run before its worker is killed.
      address: a Ray cluster address, or None for a local Ray.
      num_cpus, num_gpus: resources of one trial (num_gpus None: one GPU if
        the cluster has any, else none).
      max_concurrent: slots; None = as many as the cluster's resources allow.
      fresh_worker: run every trial in a new worker process (TensorFlow never
        gives GPU memory back, so the proxy evaluator needs it).
    """

    def __init__(
        self,
        evaluator: str,
        experiment_config: dict | None,
        *,
        address: str | None,
        num_cpus: float,
        num_gpus: float | None,
        max_concurrent: int | None,
        fresh_worker: bool,
    ):
        import ray

        self._ray = ray
        if not ray.is_initialized():
            init_ray(address)
        resources = ray.cluster_resources()
        if num_gpus is None:  # one GPU per trial where the cluster has GPUs
            num_gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        by_cpu = int(resources.get("CPU", 1) // num_cpus) if num_cpus else 10**6
        by_gpu = int(resources.get("GPU", 0) // num_gpus) if num_gpus else 10**6
        self._capacity = max(1, min(by_cpu, by_gpu))
        if max_concurrent:
            self._capacity = min(self._capacity, max_concurrent)
        if num_gpus and resources.get("GPU", 0) < num_gpus:
            raise ExecutorError(f"a trial asks for {num_gpus} GPU(s) but the Ray cluster has {resources.get('GPU', 0)}")
        self.resources = {"cpus": float(num_cpus), "gpus": float(num_gpus)}
        options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": 0, "max_calls": 1 if fresh_worker else 0}
        self._remote = ray.remote(**options)(_run_attempt)
        self._args = (evaluator, experiment_config)
        self._time_limit = float(((experiment_config or {}).get("search") or {}).get("trial_timeout_s") or 0.0)
        self._run_id = f"{uuid.uuid4().hex[:12]}/"  # markers of this executor only: drivers may share a cluster
        self._pending: dict[Any, _Attempt] = {}
        self._held: list[Outcome] = []  # dead workers while the head does not answer: maybe the head's fault
        self._polled = -1e9
        # Through Ray Client (ray://) the GCS is the cluster's own business: not watched.
        gcs_address = None
        if not (address and address.startswith("ray://")):
            with contextlib.suppress(Exception):
                gcs_address = ray.get_runtime_context().gcs_address
        self._head = _HeadWatch(gcs_address, repr(address) if address else "(local)")

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def running(self) -> int:
        return len(self._pending) + len(self._held)

    def submit(self, task: TrialTask) -> None:
        evaluator, config = task.evaluator_and_config(self._args)
        marker = f"{self._run_id}{task.trial_id}/{task.attempt}" if self._time_limit else ""
        rung = (task.epochs, task.final_rung)
        ref = self._remote.remote(marker, evaluator, task.architecture, task.seed, task.trial_dir, config, rung)
        self._pending[ref] = _Attempt(task, marker)

    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes of the attempts that ended within ``timeout`` seconds (maybe none).

        Raises:
          ExecutorError: the cluster's head has not answered for the grace period.
        """
        if not self._pending and not self._held:
            return []
        head_ok = self._head.ok(time.monotonic())
        if head_ok and self._held:
            held, self._held = self._held, []
            return held
        outcomes: list[Outcome] = []
        if self._time_limit and head_ok:
            outcomes += self._enforce_time_limit()
        if not self._pending:
            if not outcomes:
                time.sleep(min(timeout, 0.5))
            return outcomes
        ray = self._ray
        done, rest = ray.wait(list(self._pending), num_returns=1, timeout=timeout, fetch_local=False)
        if done and rest:  # collect everything else that is ready too
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=False)
            done += more
        outcomes += [self._outcome(ref, self._pending.pop(ref)) for ref in done]
        died = [o for o in outcomes if o.kind == "worker_died"]
        if died and not self._head.ok(time.monotonic(), force=True):
            self._held += died  # if the head is gone these are not the trials' failures
            outcomes = [o for o in outcomes if o.kind != "worker_died"]
        return outcomes

    def _outcome(self, ref: Any, attempt: _Attempt) -> Outcome:
        ray, task = self._ray, attempt.task
        try:
            return Outcome(task, result=ray.get(ref))
        except ray.exceptions.RayError as e:
            if attempt.killed is not None:
                return self._timed_out(attempt, e)
            if isinstance(e, ray.exceptions.RayTaskError):
                cause = e.cause if getattr(e, "cause", None) is not None else e
                return Outcome(task, error=_one_line(cause), kind="error", details=str(e))
            if isinstance(e, ray.exceptions.OutOfMemoryError):
                return Outcome(task, error="out of memory: " + _one_line(e), kind="oom", details=str(e))
            return Outcome(task, error="worker died: " + _one_line(e), kind="worker_died", details=str(e))
        finally:
            self._forget(attempt)

    def _enforce_time_limit(self) -> list[Outcome]:
        """Starts the clocks of attempts that began running; kills those past the limit."""
        now = time.monotonic()
        waiting = [a for a in self._pending.values() if a.started is None]
        if waiting and now - self._polled >= 0.5:
            self._polled = now
            running = set(_kv("internal_kv_keys", self._run_id.encode()) or [])
            for attempt in waiting:
                if attempt.marker.encode() in running:
                    attempt.started = now
        outcomes = []
        for ref, attempt in list(self._pending.items()):
            if attempt.killed is None and attempt.started is not None and now - attempt.started > self._time_limit:
                value = _kv("internal_kv_get", attempt.marker.encode())
                attempt.worker = json.loads(value) if value else {}
                attempt.killed = now
                self._cancel(ref)  # kills the worker process; Ray frees its resources
            elif attempt.killed is not None and now - attempt.killed > 30:
                # Ray never confirmed the kill: report it anyway rather than hold the slot.
                del self._pending[ref]
                self._cancel(ref)
                outcomes.append(self._timed_out(attempt, None))
                self._forget(attempt)
        return outcomes

    def _timed_out(self, attempt: _Attempt, error: BaseException | None) -> Outcome:
        ran = attempt.killed - attempt.started
        gone = _make_sure_gone(attempt.worker)
        text = f"trial exceeded search.trial_timeout_s={self._time_limit:g} (ran {ran:.0f} s); {gone}"
        where = f"worker {attempt.worker.get('host', '?')}:{attempt.worker.get('pid', '?')}"
        return Outcome(attempt.task, error=text, kind="timeout", details=f"{text}\n{where}\n{error or ''}")

    def _cancel(self, ref: Any) -> None:
        with contextlib.suppress(Exception):  # a task already gone: nothing to kill
            self._ray.cancel(ref, force=True)

    def _forget(self, attempt: _Attempt) -> None:
        if attempt.marker and self._head.down_since is None:
            _kv("internal_kv_del", attempt.marker.encode(), False)

    def shutdown(self) -> None:
        """Cancels what still runs and disconnects (without waiting on a head that is gone)."""
        if self._head.down_since is None:
            for ref in list(self._pending):
                self._cancel(ref)
            if self._time_limit:
                _kv("internal_kv_del", self._run_id.encode(), True)
        self._pending.clear()
        self._held.clear()
        self._ray.shutdown()


def _make_sure_gone(worker: dict[str, Any], wait_s: float = 5.0) -> str:
    """Checks that a killed worker on this machine is gone, and kills it if Ray did not.

    Returns:
      The end of the timeout's error text: what became of the worker.
    """
    pid = worker.get("pid")
    if not isinstance(pid, int) or worker.get("host") != socket.gethostname():
        return "its worker was killed"  # on another machine: Ray's word is all there is
    deadline = time.monotonic() + wait_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _alive(pid):
        return "its worker was killed"
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
        if f.read().startswith(b"ray::"):  # still the Ray worker, not a new process with its pid
            os.kill(pid, signal.SIGKILL)
    return f"its worker was killed (pid {pid}, after Ray's cancel left it running)"


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (its parent, the raylet, reaps it); Linux's /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False

"""Where trials run: in this process (tests, debugging) or as Ray tasks.

Both executors take ``TrialTask``s and hand back ``Outcome``s as trials
finish; the search loop never knows which one it drives.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import socket
import sys
import traceback
from typing import Any

from nas.evaluators import run_trial
from nas.quiet_tf import DEFAULT_TF_LOG_LEVEL


@dataclasses.dataclass(frozen=True)
class TrialTask:
    """One attempt of one trial."""

    trial_id: int
    attempt: int
    architecture: dict[str, Any]
    seed: int
    trial_dir: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How an attempt ended.

    Attributes:
      task: the attempt.
      result: ``run_trial``'s return value when it succeeded.
      error: one-line error text when it failed.
      kind: ``"ok"``, ``"error"`` (the evaluator raised or returned junk),
        ``"worker_died"`` (the process running it died) or ``"oom"``.
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


class ExecutorError(RuntimeError):
    """Ray cannot be started or reached, or cannot run a trial as configured."""


def init_ray(address: str | None) -> None:
    """Starts a local Ray (dashboard off, resources detected) or connects to a cluster.

    Workers see this process's import path, so a user's evaluator module next
    to the command line imports in them too.

    Raises:
      ExecutorError: Ray cannot start or the address cannot be reached.
    """
    import ray

    if address and address != "auto":
        _check_reachable(address)
    env_vars = {"PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)}
    env_vars["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
        "runtime_env": {"env_vars": env_vars},
    }
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(**kwargs)
    except Exception as e:  # noqa: BLE001 - Ray raises many types here; the user needs one line
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExecutorError(f"cannot start or reach {where}: {first}") from None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fails fast when nothing listens at a Ray address (Ray itself retries for minutes)."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(f"--ray_address={address!r}: expected HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ExecutorError(f"cannot reach the Ray cluster at {address!r}: {e.strerror or e}") from None


class LocalExecutor:
    """Runs trials one at a time in this process, when ``wait`` is called."""

    def __init__(self, evaluator: str, experiment_config: dict | None = None):
        self._args = (evaluator, experiment_config)
        self._queue: collections.deque[TrialTask] = collections.deque()

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
        evaluator, config = self._args
        try:
            result = run_trial(evaluator, task.architecture, task.seed, task.trial_dir, config)
            return [Outcome(task, result=result)]
        except Exception as e:  # noqa: BLE001 - a trial's failure is recorded, never fatal
            return [Outcome(task, error=_one_line(e), kind="error", details=traceback.format_exc())]

    def shutdown(self) -> None:
        self._queue.clear()


class RayExecutor:
    """Runs each attempt as a Ray task.

    Args:
      evaluator: evaluator spec for ``run_trial``.
      experiment_config: the frozen config as a dict (for the proxy evaluator).
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
        options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": 0, "max_calls": 1 if fresh_worker else 0}
        self._remote = ray.remote(**options)(run_trial)
        self._args = (evaluator, experiment_config)
        self._pending: dict[Any, TrialTask] = {}

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def running(self) -> int:
        return len(self._pending)

    def submit(self, task: TrialTask) -> None:
        evaluator, config = self._args
        ref = self._remote.remote(evaluator, task.architecture, task.seed, task.trial_dir, config)
        self._pending[ref] = task

    def wait(self, timeout: float) -> list[Outcome]:
        if not self._pending:
            return []
        ray = self._ray
        done, rest = ray.wait(list(self._pending), num_returns=1, timeout=timeout, fetch_local=False)
        if done and rest:  # collect everything else that is ready too
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=False)
            done += more
        outcomes = []
        for ref in done:
            task = self._pending.pop(ref)
            try:
                outcomes.append(Outcome(task, result=ray.get(ref)))
            except ray.exceptions.RayTaskError as e:
                cause = e.cause if getattr(e, "cause", None) is not None else e
                outcomes.append(Outcome(task, error=_one_line(cause), kind="error", details=str(e)))
            except ray.exceptions.OutOfMemoryError as e:
                outcomes.append(Outcome(task, error="out of memory: " + _one_line(e), kind="oom", details=str(e)))
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.RayError) as e:
                outcomes.append(Outcome(task, error="worker died: " + _one_line(e), kind="worker_died", details=str(e)))
        return outcomes

    def shutdown(self) -> None:
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        self._ray.shutdown()

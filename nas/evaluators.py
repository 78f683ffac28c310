"""What runs inside a worker: one trial of one architecture.

An evaluator is a function ``evaluate(architecture: dict, seed: int,
trial_dir: str) -> dict`` returning metrics (numbers). A multi-fidelity search
(``search.fidelity=asha``) calls it with ``epochs=E`` too: train to epoch E
(continuing from what ``trial_dir`` holds) and return the metrics there. The built-in one
trains the proxy RetinaNet and evaluates COCO AP; ``--evaluator=module:function``
replaces it with the user's own. The evaluator is named by a string so that
Ray workers import it themselves.
"""

from __future__ import annotations

import importlib
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from search_space.errors import UserError

PROXY_EVALUATOR = "proxy"


class EvaluatorError(UserError, ValueError):
    """The evaluator cannot be loaded, or it returned something unusable."""


def load_evaluator(spec: str) -> Callable[..., dict]:
    """Resolves ``"module:function"`` (or ``"proxy"``) to a callable.

    Raises:
      EvaluatorError: malformed spec, module not importable, no such function.
    """
    if spec == PROXY_EVALUATOR:
        return _proxy_evaluator
    if ":" not in spec:
        raise EvaluatorError(f"--evaluator={spec!r}: expected module:function (e.g. mypkg.evals:evaluate) or 'proxy'")
    module_name, fn_name = spec.split(":", 1)
    # A user's module in the directory they run from, as with `python -m`: the installed
    # console scripts do not put it on the path (Ray workers get it through PYTHONPATH).
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to see
        raise EvaluatorError(f"--evaluator={spec!r}: cannot import {module_name!r}: {type(e).__name__}: {e}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise EvaluatorError(f"--evaluator={spec!r}: module {module_name!r} has no function {fn_name!r}")
    return fn


def accepts_epochs(fn: Callable[..., Any]) -> bool:
    """Whether a user's evaluator can be called with ``epochs=`` (what ``search.fidelity=asha`` needs)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "epochs" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def check_metrics(metrics: Any) -> dict[str, Any]:
    """Makes an evaluator's return value safe to log.

    Numbers are kept; a non-finite number is kept as its text (``"nan"``), so
    the reward step names it instead of treating it as missing; anything
    else is dropped.

    Raises:
      EvaluatorError: not a dict.
    """
    if not isinstance(metrics, dict):
        raise EvaluatorError(f"evaluator returned {type(metrics).__name__}, expected a dict of metrics")
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            out[str(key)] = str(value)
        else:
            out[str(key)] = value
    return out


def run_trial(
    evaluator: str,
    architecture: dict[str, Any],
    seed: int,
    trial_dir: str,
    experiment_config: dict[str, Any] | None = None,
    epochs: float | None = None,
    final_rung: bool = True,
) -> dict[str, Any]:
    """Runs one trial; the body of a worker task.

    ``epochs`` (a multi-fidelity search): the rung to train to. The proxy
    evaluator stops there (``trainer.stop_at_epoch``) unless it is the
    ``final_rung``; a user's evaluator gets it as ``epochs=``.

    Returns:
      ``{"metrics": {...}, "worker": "host:pid", "timings": {"evaluate_s": ...}}``.

    Raises:
      EvaluatorError, or whatever the evaluator raised.
    """
    os.makedirs(trial_dir, exist_ok=True)
    if evaluator == PROXY_EVALUATOR:
        from nas.quiet_tf import import_tensorflow_quietly

        import_tensorflow_quietly()
    fn = load_evaluator(evaluator)
    start = time.time()
    if evaluator == PROXY_EVALUATOR:
        if epochs is not None and not final_rung and experiment_config is not None:
            trainer = {**experiment_config.get("trainer", {}), "stop_at_epoch": float(epochs)}
            experiment_config = {**experiment_config, "trainer": trainer}
        metrics = fn(architecture, seed, trial_dir, experiment_config)
    elif epochs is not None:
        metrics = fn(architecture, seed, trial_dir, epochs=epochs)
    else:
        metrics = fn(architecture, seed, trial_dir)
    metrics = check_metrics(metrics)
    return {
        "metrics": metrics,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "timings": {"evaluate_s": time.time() - start},
    }


def _proxy_evaluator(architecture: dict, seed: int, trial_dir: str, experiment_config: dict | None) -> dict:
    """Trains the proxy RetinaNet on the experiment's data and returns COCO metrics."""
    import keras

    from experiments.registry import experiment_from_dict
    from proxy_trainer.training.runtime import limit_cpu_threads
    from proxy_trainer.training.trainer import train_and_evaluate
    from search_space import architecture_from_dict

    if experiment_config is None:
        raise EvaluatorError("the proxy evaluator needs the experiment config")
    config = experiment_from_dict(experiment_config)
    arch, _ = architecture_from_dict(architecture)
    search = experiment_config.get("search", {})
    if search.get("executor") == "ray":  # a worker beside other trials: use the cores reserved for it
        limit_cpu_threads(math.ceil(search.get("trial_cpus", 0)))
    # A reused worker (search.fresh_worker_per_trial=false) still holds the last trial's model.
    keras.backend.clear_session(free_memory=True)
    return train_and_evaluate(arch, config, trial_dir, seed)

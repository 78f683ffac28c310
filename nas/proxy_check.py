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
import json
import math
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from experiments.config import ExperimentConfig
from experiments.overrides import (
    ConfigError,
    apply_overrides,
    config_to_dict,
    diff_configs,
    flatten,
    parse_override_string,
)
from experiments.search_config import RUNTIME_KEYS
from nas.executors import Outcome, TrialTask
from nas.search_loop import NOT_RETRIED_ERRORS
from nas.trial_store import COMPLETED, FAILED, TrialStore
from nas.workdir import PROXY_CHECK_FILE, Workdir, WorkdirError, atomic_write_json, read_json
from search_space import (
    Architecture,
    DecisionEncoding,
    architecture_from_dict,
    architecture_preset,
    architecture_to_dict,
    load_architecture,
    sample_architecture,
)
from search_space.errors import UserError

SCHEMA_VERSION = 1
RESULT_FILE = "proxy_check.json"
RECIPES = ("proxy", "reference")
REFERENCE_LENGTH_FACTOR = 4
# The reference trains with other seeds than the proxy (1000 + k), so the two recipes share no
# initialisation or data order and their agreement is not inflated by it.
REFERENCE_SEED_OFFSET = 1000
PRESETS = ("spinenet49", "resnet_like")
# COCO train2017 has 118,287 images (docs/proxy_recipe.md#reward-split); the dry run's step counts assume all of it.
COCO_TRAIN2017_IMAGES = 118_287


class ProxyCheckError(UserError, RuntimeError):
    """A proxy check cannot start or continue as asked; the message says why."""


# ----- the plan: what is checked ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckArch:
    """One architecture of the check: a label, where it came from, and the network."""

    label: str
    source: str
    architecture: Architecture


@dataclasses.dataclass
class CheckPlan:
    """Everything a check computes: its architectures, seeds and the two recipes' configs."""

    experiment: str
    archs: list[CheckArch]
    seeds: int
    configs: dict[str, ExperimentConfig]  # recipe -> config
    reference_overrides: dict[str, Any]

    def trials(self) -> list[dict[str, Any]]:
        """The trials in the order they run (trial id = position): seed by seed, the proxy before the reference.

        A check cut short therefore has whole seeds of both recipes first.
        """
        out = []
        for k in range(self.seeds):
            for recipe in RECIPES:
                for i, _ in enumerate(self.archs):
                    seed = k if recipe == "proxy" else REFERENCE_SEED_OFFSET + k
                    out.append({"arch": i, "recipe": recipe, "seed_index": k, "seed": seed})
        return out

    def to_dict(self) -> dict[str, Any]:
        """The plan's plain form, as ``check.json`` keeps it."""
        return {
            "experiment": self.experiment,
            "seeds": self.seeds,
            "reference_overrides": self.reference_overrides,
            "archs": [
                {
                    "label": a.label,
                    "source": a.source,
                    "fingerprint": a.architecture.fingerprint(),
                    "architecture": architecture_to_dict(a.architecture),
                }
                for a in self.archs
            ],
            "recipes": {name: config_to_dict(config) for name, config in self.configs.items()},
        }


def _fixed(plan_dict: dict[str, Any]) -> dict[str, Any]:
    """A plan's plain form less what may change when a check continues (the recipes' runtime keys)."""
    flat = flatten(json.loads(json.dumps(plan_dict)))
    return {
        k: v for k, v in flat.items() if not any(k == f"recipes.{r}.{key}" for r in RECIPES for key in RUNTIME_KEYS)
    }


def reference_config(proxy: ExperimentConfig, overrides: str | None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """The reference recipe: ``overrides`` applied to the proxy's config (default: training 4x longer).

    Raises:
      ConfigError: a bad override (unknown key, wrong type), or one that leaves the recipe unchanged.
    """
    if overrides:
        parsed = parse_override_string(overrides)
        if not parsed:
            raise ConfigError("--reference is empty; give overrides, e.g. --reference=trainer.epochs=20")
    elif proxy.trainer.train_steps > 0:
        parsed = {"trainer.train_steps": proxy.trainer.train_steps * REFERENCE_LENGTH_FACTOR}
    else:
        parsed = {"trainer.epochs": proxy.trainer.epochs * REFERENCE_LENGTH_FACTOR}
    try:
        reference = apply_overrides(proxy, parsed)
    except ConfigError as e:
        raise ConfigError(f"--reference: {e}") from None
    if "search.trial_timeout_s" not in flatten(parsed) and proxy.search.trial_timeout_s:
        # A longer recipe gets a proportionally longer time limit (a trial past it is killed as hung).
        factor = max(1.0, _length(reference) / _length(proxy)) if _length(proxy) else 1.0
        reference = apply_overrides(reference, {"search.trial_timeout_s": proxy.search.trial_timeout_s * factor})
    if not [k for k in diff_configs(proxy, reference) if k not in RUNTIME_KEYS]:
        raise ConfigError(f"--reference={overrides}: the reference recipe is the proxy's own; change what it trains")
    return reference, flatten(parsed)


def _length(config: ExperimentConfig) -> float:
    """Training length in steps (``train_steps``) or epochs, whichever the recipe uses."""
    t = config.trainer
    return float(t.train_steps) if t.train_steps > 0 else float(t.epochs)


def with_epoch_evaluation(config: ExperimentConfig) -> ExperimentConfig:
    """The proxy recipe as a check runs it: also evaluated after every epoch (its learning curve)."""
    return apply_overrides(config, {"trainer.eval_every_epoch": True})


def sample_archs(config: ExperimentConfig, count: int, seed: int, taken: set[str]) -> list[CheckArch]:
    """``count`` distinct random members of the experiment's space (``random.Random(seed)``), none in ``taken``."""
    encoding = DecisionEncoding(config.search_space)
    rng = random.Random(seed)
    out: list[CheckArch] = []
    for _ in range(100 * max(count, 1)):
        if len(out) == count:
            break
        arch = sample_architecture(encoding, rng).with_scaling(config.search_space.scaling)
        if arch.fingerprint() in taken:
            continue
        taken.add(arch.fingerprint())
        out.append(CheckArch(f"random_{len(out)}", f"random (sample seed {seed})", arch))
    return out


def search_top(search_path: str, top: int) -> tuple[list[CheckArch], ExperimentConfig]:
    """The ``top`` best distinct architectures of a finished search, and its frozen config.

    Raises:
      ProxyCheckError: not a finished search (still running, or short of its target, or trials in flight).
      WorkdirError: no search there.
    """
    search = Workdir(search_path)
    config = search.config()
    with TrialStore(search.log_path, readonly=True) as store:
        done = sum(1 for t in store.trials.values() if t.status in (COMPLETED, FAILED))
        target = config.search.max_trials
        holder = search.holder()
        if holder is not None or store.in_flight() or done < target:
            state = f"driven by {holder}" if holder else f"{done} of {target} trials finished"
            raise ProxyCheckError(
                f"--from_search={search_path}: not a finished search ({state}); finish it with "
                f"nas-search resume --workdir={search_path}, or check given architectures with --arch_file"
            )
        archs, seen = [], set()
        for trial in store.best(len(store.trials)):
            if trial.fingerprint in seen:
                continue
            seen.add(trial.fingerprint)
            arch, _ = architecture_from_dict(trial.architecture)
            source = f"search {search.search_id()} trial {trial.trial_id} (reward {trial.reward:.4f})"
            archs.append(CheckArch(f"search_rank{len(archs) + 1}", source, arch))
            if len(archs) == top:
                break
    if not archs:
        raise ProxyCheckError(f"--from_search={search_path}: the search has no completed trial")
    return archs, config


def make_plan(
    config: ExperimentConfig | None,
    *,
    archs: int | None = None,
    arch_files: list[str] | None = None,
    from_search: str | None = None,
    top: int | None = None,
    seeds: int = 3,
    reference: str | None = None,
    sample_seed: int = 0,
) -> CheckPlan:
    """The architectures and recipes of a check.

    The set: the given files, else the presets (``spinenet49``,
    ``resnet_like``) unless ``from_search`` gives the ``top`` best of a
    finished search; then ``archs`` random members of the space (default
    10, or ``top`` with ``from_search``, 0 with files). Architectures that
    build the same network are checked once. With ``from_search`` and no
    ``config``, the search's frozen config is the proxy recipe.

    Raises:
      ProxyCheckError, WorkdirError, ConfigError, ArchitectureError: with a message for the user.
    """
    if seeds < 1:
        raise ProxyCheckError(f"--seeds={seeds}; allowed >= 1")
    search_archs: list[CheckArch] = []
    if from_search:
        search_archs, search_config = search_top(from_search, top or 5)
        config = config or search_config
    if config is None:
        raise ProxyCheckError("--experiment is required (or --from_search, to check with the search's own recipe)")
    scaling = config.search_space.scaling
    search_archs = [dataclasses.replace(a, architecture=a.architecture.with_scaling(scaling)) for a in search_archs]
    chosen: list[CheckArch] = []
    if arch_files:
        for path in arch_files:
            arch, _ = load_architecture(path)
            chosen.append(
                CheckArch(os.path.splitext(os.path.basename(path))[0], f"file {path}", arch.with_scaling(scaling))
            )
    elif not from_search:
        chosen += [
            CheckArch(name, f"preset:{name}", architecture_preset(name).with_scaling(scaling)) for name in PRESETS
        ]
    chosen += search_archs
    unique, taken = [], set()
    for a in chosen:
        if a.architecture.fingerprint() not in taken:
            taken.add(a.architecture.fingerprint())
            unique.append(a)
    count = archs if archs is not None else (len(search_archs) if from_search else (0 if arch_files else 10))
    unique += sample_archs(config, count, sample_seed, taken)
    if len(unique) < 2:
        raise ProxyCheckError(f"a check needs at least 2 distinct architectures; this one has {len(unique)}")
    proxy = with_epoch_evaluation(config)
    ref, overrides = reference_config(config, reference)
    return CheckPlan(config.name, unique, seeds, {"proxy": proxy, "reference": ref}, overrides)


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
        old, new = _fixed(meta["plan"]), _fixed(plan.to_dict())
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


# ----- the result --------------------------------------------------------------------------


def collect(wd: Workdir, plan: CheckPlan | None = None) -> dict[str, Any]:
    """Per-architecture results from the check's trial log (read-only)."""
    meta = read_json(wd.join(PROXY_CHECK_FILE), "the proxy check's plan")
    plan_dict = meta["plan"]
    archs = plan_dict["archs"]
    per_arch = [{"proxy": [], "reference": [], "epochs": [], "seeds": {"proxy": [], "reference": []}} for _ in archs]
    costs: dict[str, list[dict[str, float]]] = {r: [] for r in RECIPES}
    counts = {"completed": 0, "failed": 0, "pending": 0}
    resources = {"cpus": 1.0, "gpus": 0.0}
    with TrialStore(wd.log_path, readonly=True) as store:
        if store.runs:
            resources = store.runs[-1].get("resources") or resources
        total = len(archs) * plan_dict["seeds"] * len(RECIPES)
        for trial in store.trials.values():
            spec = trial.proposal
            if trial.status == COMPLETED:
                counts["completed"] += 1
                a = per_arch[spec["arch"]]
                a[spec["recipe"]].append(trial.reward)
                a["seeds"][spec["recipe"]].append(trial.seed)
                metrics = trial.metrics or {}
                if spec["recipe"] == "proxy":
                    curve = {
                        int(k[len("AP_epoch_") :]): v
                        for k, v in metrics.items()
                        if k.startswith("AP_epoch_") and isinstance(v, (int, float))
                    }
                    if curve:
                        a["epochs"].append(curve)
                seconds = (trial.timings or {}).get("evaluate_s")
                if seconds is not None:
                    costs[spec["recipe"]].append({"seconds": seconds, "steps": metrics.get("steps")})
            elif trial.status == FAILED:
                counts["failed"] += 1
        counts["pending"] = total - counts["completed"] - counts["failed"]
    return {"meta": meta, "per_arch": per_arch, "costs": costs, "counts": counts, "resources": resources}


def compute_result(wd: Workdir) -> dict[str, Any]:
    """The check's figures (``nas.proxy_stats.summarize_check``) with the per-architecture table and costs."""
    import numpy as np

    from nas.proxy_stats import summarize_check

    data = collect(wd)
    meta, per_arch = data["meta"], data["per_arch"]
    plan = meta["plan"]
    summary = summarize_check(per_arch)
    archs = []
    for spec, a in zip(plan["archs"], per_arch):
        row = {"label": spec["label"], "source": spec["source"], "fingerprint": spec["fingerprint"]}
        for recipe in RECIPES:
            values = a[recipe]
            row[recipe] = {
                "values": values,
                "seeds": a["seeds"][recipe],
                "mean": float(np.mean(values)) if values else None,
                "std": float(np.std(values, ddof=1)) if len(values) >= 2 else None,
            }
        epochs = sorted({e for run in a["epochs"] for e in run})
        row["proxy_by_epoch"] = {str(e): float(np.mean([r[e] for r in a["epochs"] if e in r])) for e in epochs}
        archs.append(row)
    device = "GPU" if data["resources"].get("gpus") else "CPU core"
    per_device = data["resources"].get("gpus") or data["resources"].get("cpus") or 1.0
    cost = {"device": device, "devices_per_trial": per_device}
    for recipe in RECIPES:
        seconds = [c["seconds"] for c in data["costs"][recipe]]
        cost[recipe] = {
            "trials": len(seconds),
            "mean_s": float(np.mean(seconds)) if seconds else None,
            "median_s": float(np.median(seconds)) if seconds else None,
            "mean_device_s": float(np.mean(seconds)) * per_device if seconds else None,
            "steps": next((c["steps"] for c in data["costs"][recipe] if c["steps"]), None),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "check_id": meta["check_id"],
        "workdir": wd.path,
        "experiment": plan["experiment"],
        "reference_overrides": plan["reference_overrides"],
        "seeds": plan["seeds"],
        "num_archs": len(plan["archs"]),
        "trials": {**data["counts"], "total": len(plan["archs"]) * plan["seeds"] * len(RECIPES)},
        "complete": data["counts"]["pending"] == 0,
        "archs": archs,
        **summary,
        "cost": cost,
        "written": time.time(),
        "host": {"cores": os.cpu_count(), "python": platform.python_version()},
    }


def write_result(wd: Workdir, plan: CheckPlan | None = None) -> dict[str, Any]:
    """Computes the result, writes ``proxy_check.json`` and the plots; returns the result."""
    from nas.proxy_check_plots import plot_learning_curves, plot_proxy_vs_reference

    result = compute_result(wd)
    os.makedirs(wd.join("plots"), exist_ok=True)
    result["plots"] = [
        plot_proxy_vs_reference(result, wd.join("plots", "proxy_vs_reference.png")),
        plot_learning_curves(result, wd.join("plots", "learning_curves.png")),
    ]
    atomic_write_json(wd.join(RESULT_FILE), result)
    return result


def load_result(path: str) -> dict[str, Any]:
    """A check's stored result: ``path`` is the check's directory or its ``proxy_check.json``.

    Raises:
      WorkdirError: no result there (the check has not run), or it is unreadable.
    """
    file = path if path.endswith(".json") else os.path.join(path, RESULT_FILE)
    if not os.path.exists(file):
        raise WorkdirError(f"{file}: no proxy-check result there; run nas-search proxy-check --workdir={path} first")
    result = read_json(file, "the proxy-check result")
    if not isinstance(result, dict) or result.get("schema_version") != SCHEMA_VERSION or "noise" not in result:
        raise WorkdirError(f"{file}: not a proxy-check result of this version")
    return result


def reward_noise(result: dict[str, Any], path: str) -> dict[str, Any]:
    """What a search's status and plot show of a check: the proxy's std between seeds and where it comes from."""
    noise = result["noise"]["proxy"]
    return {
        "seed_std": noise["seed_std"],
        "snr": noise["snr"],
        "archs": noise["archs_with_seeds"],
        "seeds": result["seeds"],
        "experiment": result["experiment"],
        "source": path,
        "text": (
            f"reward std between seeds: {noise['seed_std']:.3f} (proxy-check {path}, "
            f"{noise['archs_with_seeds']} archs x {result['seeds']} seeds, {result['experiment']})"
            if noise["seed_std"] is not None
            else f"reward std between seeds: unknown (proxy-check {path} has no architecture with 2 seeds done)"
        ),
    }


# ----- the plan's projected cost (--dry_run) ---------------------------------------------------


def train_images(config: ExperimentConfig) -> tuple[int, str]:
    """Training images of the experiment's data, and how that number is known."""
    data = config.data
    if data.source == "synthetic":
        return data.synthetic.num_images - data.holdout_size, "generated"
    return COCO_TRAIN2017_IMAGES - data.holdout_size, "assuming all of COCO train2017 (118,287 images)"


def measured_step_seconds(*paths: str | None) -> tuple[float | None, str]:
    """The median training seconds per step of the completed trials in the given check or search directories."""
    import statistics

    values = []
    where = []
    for path in paths:
        if not path or not os.path.exists(os.path.join(path, "trials.jsonl")):
            continue
        with TrialStore(os.path.join(path, "trials.jsonl"), readonly=True) as store:
            for t in store.completed():
                m = t.metrics or {}
                if t.reused_from is None and m.get("steps_run") and m.get("train_s"):
                    values.append(m["train_s"] / m["steps_run"])
        where.append(path)
    if not values:
        return None, ""
    return statistics.median(values), f"median of {len(values)} trials in {', '.join(where)}"


def dry_run_plan(plan: CheckPlan, step_seconds: float | None, source: str) -> dict[str, Any]:
    """The plan of a check: trials, recipes, steps and projected trial-hours; writes nothing."""
    recipes = {}
    total_steps = 0
    n = len(plan.archs) * plan.seeds
    for name, config in plan.configs.items():
        images, how = train_images(config)
        steps = config.trainer.total_steps(images)
        total_steps += steps * n
        recipes[name] = {
            "trials": n,
            "epochs": config.trainer.epochs if config.trainer.train_steps == 0 else None,
            "steps_per_trial": steps,
            "train_images": images,
            "train_images_from": how,
            "eval_every_epoch": config.trainer.eval_every_epoch,
            "trial_hours": steps * step_seconds / 3600 if step_seconds else None,
        }
    return {
        "experiment": plan.experiment,
        "archs": [
            {"label": a.label, "source": a.source, "fingerprint": a.architecture.fingerprint()} for a in plan.archs
        ],
        "seeds": plan.seeds,
        "reference_overrides": plan.reference_overrides,
        "trials": 2 * n,
        "recipes": recipes,
        "total_steps": total_steps,
        "step_seconds": step_seconds,
        "step_seconds_from": source,
        "projected_trial_hours": total_steps * step_seconds / 3600 if step_seconds else None,
    }
